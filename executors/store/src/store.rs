//! [`Store`]: one S3 location opened with its client, and the operations on
//! manifests (write after the data, read and check, verify that an output's
//! blobs are all there). Uploads live in `upload.rs`, downloads in
//! `download.rs`.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::config::{StoreOptions, client};
use crate::error::{Remote, Secrets, StoreError};
use crate::location::{ArtefactName, Location};
use crate::manifest::Manifest;

/// An artefact store at `s3://bucket/prefix`.
///
/// Cheap to clone (the HTTP client and its connection pool are shared).
#[derive(Clone)]
pub struct Store {
    pub(crate) loc: Location,
    pub(crate) opts: StoreOptions,
    pub(crate) s3: Arc<dyn ObjectStore>,
    pub(crate) endpoint: String,
    pub(crate) secrets: Secrets,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("location", &self.loc.to_string())
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens `s3://bucket[/prefix]` with the default [`StoreOptions`] and the
    /// credentials of the environment (or AWS profile). Sends no request.
    pub fn open(url: &str) -> Result<Store, StoreError> {
        Store::open_with(url, StoreOptions::default())
    }

    /// Opens `s3://bucket[/prefix]` with `opts`. Sends no request.
    pub fn open_with(url: &str, opts: StoreOptions) -> Result<Store, StoreError> {
        Store::at(Location::parse(url)?, opts)
    }

    /// Opens an already parsed location.
    pub fn at(loc: Location, opts: StoreOptions) -> Result<Store, StoreError> {
        let c = client(&loc, &opts)?;
        Ok(Store {
            loc,
            opts,
            s3: c.store,
            endpoint: c.endpoint,
            secrets: c.secrets,
        })
    }

    /// The location.
    pub fn location(&self) -> &Location {
        &self.loc
    }

    /// The endpoint requests go to (for messages; no credentials in it).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The options.
    pub fn options(&self) -> &StoreOptions {
        &self.opts
    }

    pub(crate) fn remote(&self) -> Remote<'_> {
        Remote {
            endpoint: &self.endpoint,
            secrets: &self.secrets,
        }
    }

    pub(crate) fn remote_err(
        &self,
        action: &'static str,
        key: &str,
        err: &object_store::Error,
    ) -> StoreError {
        self.remote().error(action, self.loc.url_of(key), err)
    }

    pub(crate) fn path(&self, key: &str) -> Result<Path, StoreError> {
        Path::parse(key).map_err(|e| StoreError::Config {
            location: self.loc.to_string(),
            endpoint: self.endpoint.clone(),
            message: format!("key `{key}` is not valid: {e}"),
        })
    }

    /// Writes `manifest` under its name. Called only once every blob it
    /// lists is complete in the store.
    pub(crate) async fn put_manifest(&self, manifest: &Manifest) -> Result<(), StoreError> {
        let key = self.loc.manifest_key(&manifest.name()?);
        let json = serde_json::to_vec_pretty(manifest).map_err(|e| StoreError::Manifest {
            url: self.loc.url_of(&key),
            reason: e.to_string(),
        })?;
        let p = self.path(&key)?;
        self.s3
            .put(&p, PutPayload::from(Bytes::from(json)))
            .await
            .map_err(|e| self.remote_err("write manifest", &key, &e))?;
        tracing::debug!(manifest = %self.loc.url_of(&key), "manifest written");
        Ok(())
    }

    /// Reads and checks the manifest of `name` (see [`Manifest`] for the
    /// checks). A missing manifest is a [`RemoteKind::NotFound`](crate::RemoteKind::NotFound) error.
    pub async fn manifest(&self, name: &ArtefactName) -> Result<Manifest, StoreError> {
        let key = self.loc.manifest_key(name);
        let url = self.loc.url_of(&key);
        let p = self.path(&key)?;
        let body = async { self.s3.get(&p).await?.bytes().await }
            .await
            .map_err(|e| self.remote_err("read manifest", &key, &e))?;
        let m: Manifest = serde_json::from_slice(&body).map_err(|e| StoreError::Manifest {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        m.check(&self.loc).map_err(|reason| StoreError::Manifest {
            url: url.clone(),
            reason,
        })?;
        if m.name()? != *name {
            return Err(StoreError::Manifest {
                url,
                reason: format!("it is the manifest of {}", m.name()?),
            });
        }
        Ok(m)
    }

    /// Checks that every blob of `manifest` is in the store with its size
    /// (one HEAD request per file; the content is verified on download).
    pub async fn check_output(&self, manifest: &Manifest) -> Result<(), StoreError> {
        let url = self.loc.url_of(&self.loc.manifest_key(&manifest.name()?));
        manifest
            .check(&self.loc)
            .map_err(|reason| StoreError::Manifest { url, reason })?;
        for f in &manifest.files {
            let p = self.path(&f.blob)?;
            let meta = self
                .s3
                .head(&p)
                .await
                .map_err(|e| self.remote_err("check blob", &f.blob, &e))?;
            if meta.size != f.size {
                return Err(StoreError::SizeMismatch {
                    url: self.loc.url_of(&f.blob),
                    expected: f.size,
                    actual: meta.size,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_checks_the_address_first() {
        let e = Store::open("s3://Bad_Bucket/x").unwrap_err().to_string();
        assert!(
            e.starts_with(
                "invalid store address `s3://Bad_Bucket/x`: `Bad_Bucket` is not a valid bucket name"
            ),
            "{e}"
        );
        let e = Store::open("/local/dir").unwrap_err().to_string();
        assert_eq!(
            e,
            "invalid store address `/local/dir`: expected s3://bucket[/prefix]"
        );
    }

    #[test]
    fn debug_shows_no_credentials() {
        let opts = StoreOptions {
            endpoint: Some("https://user:pw-in-url@s3.example.org".into()),
            credentials: Some(crate::Credentials {
                access_key_id: "AKIDEXAMPLE".into(),
                secret_access_key: "secret-for-debug-test-0123456789".into(),
                session_token: None,
            }),
            ..StoreOptions::default()
        };
        let s = Store::open_with("s3://bucket-a/p", opts).unwrap();
        assert_eq!(s.endpoint(), "https://s3.example.org");
        let shown = format!("{s:?}");
        assert_eq!(
            shown,
            r#"Store { location: "s3://bucket-a/p", endpoint: "https://s3.example.org", .. }"#
        );
    }
}
