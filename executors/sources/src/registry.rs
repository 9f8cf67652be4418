//! Which [`Fetcher`] fetches which scheme: [`fetcher_for`] is where each
//! scheme's module plugs in (all four are built; a scheme without one
//! would be refused at fetch time with "... not built").

use crate::Fetcher;
use std::collections::HashMap;
use std::sync::Arc;
use twinflow_core::SourceScheme;

/// The fetcher of `scheme` with its default settings, if one is built.
pub fn fetcher_for(scheme: SourceScheme) -> Option<Arc<dyn Fetcher>> {
    match scheme {
        SourceScheme::Http => crate::http::HttpFetcher::new(crate::http::Retry::default())
            .ok()
            .map(|f| Arc::new(f) as Arc<dyn Fetcher>),
        SourceScheme::S3 => Some(Arc::new(crate::s3::S3Fetcher::from_env())),
        SourceScheme::Stac => Some(Arc::new(crate::stac::StacFetcher::new())),
        SourceScheme::Gbif => Some(Arc::new(crate::gbif::GbifFetcher::from_env())),
    }
}

/// The fetchers an executor uses, by scheme.
#[derive(Debug, Clone, Default)]
pub struct Fetchers(HashMap<SourceScheme, Arc<dyn Fetcher>>);

impl Fetchers {
    /// Every scheme's [`fetcher_for`].
    pub fn builtin() -> Self {
        let all = [
            SourceScheme::Http,
            SourceScheme::S3,
            SourceScheme::Stac,
            SourceScheme::Gbif,
        ];
        Self(
            all.into_iter()
                .filter_map(|s| Some((s, fetcher_for(s)?)))
                .collect(),
        )
    }

    /// These fetchers with `scheme`'s replaced (tests: a faster retry).
    pub fn with(mut self, scheme: SourceScheme, fetcher: Arc<dyn Fetcher>) -> Self {
        self.0.insert(scheme, fetcher);
        self
    }

    /// The fetcher of `scheme`.
    pub fn get(&self, scheme: SourceScheme) -> Option<&Arc<dyn Fetcher>> {
        self.0.get(&scheme)
    }
}
