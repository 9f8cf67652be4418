//! TODO(helper): see the crate docs.

/// The routes of this module, nested by [`crate::router`].
pub fn router(_config: &crate::Config) -> axum::Router {
    axum::Router::new()
}
