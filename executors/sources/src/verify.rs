//! The checks a fetched copy passes before the cache publishes it, beyond
//! its digest (the cache's): [`check_format`] is the hook for `format:`.

use std::path::Path;
use twinflow_core::SourceSpec;

/// Whether the content at `path` (a file, or a directory when
/// `spec.directory`) is of `spec.format`; `Err` says why not (a
/// lowercase fragment).
///
/// HOOK: accepts everything for now. The format checks (`dwca`, `csv`,
/// `json`, `netcdf`, `zarr`) are the `formats` module's, which plugs in
/// here; the cache already refuses and removes content this returns `Err`
/// for.
pub fn check_format(spec: &SourceSpec, path: &Path) -> Result<(), String> {
    let _ = (spec, path);
    Ok(())
}
