//! Content checks by `format:` ([`check_format`]): the cache calls it on
//! staged content before publishing it, and refuses content that is not
//! what the source declares. Darwin Core Archives are in [`dwca`].

pub mod dwca;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use twinflow_core::{SourceFormat, SourceSpec};

/// Lines of a CSV file whose delimiter counts are compared with the header.
const CSV_LINES: usize = 20;
/// Bytes of a CSV file read for the check.
const CSV_BYTES: u64 = 1 << 20;

/// Checks that the content at `path` (a file or a directory) is of
/// `spec.format`; the error says what is wrong (the caller adds the source
/// and its URL).
pub fn check_format(spec: &SourceSpec, path: &Path) -> Result<(), String> {
    match spec.format {
        SourceFormat::Any => Ok(()),
        SourceFormat::Csv => check_csv(path),
        SourceFormat::Json => check_json(path),
        SourceFormat::Netcdf => check_netcdf(path),
        SourceFormat::Zarr => check_zarr(path),
        SourceFormat::Dwca => {
            if path.is_dir() {
                dwca::check_dir(path).map(|_| ())
            } else {
                dwca::check_zip(path).map(|_| ())
            }
        }
    }
}

fn open_file(path: &Path, format: &str) -> Result<std::fs::File, String> {
    if path.is_dir() {
        return Err(format!(
            "{} is a directory, not a {format} file",
            path.display()
        ));
    }
    std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))
}

/// UTF-8 text with a header line; the first lines have as many delimiters
/// (tab if the header has one, else comma, else semicolon) as the header,
/// outside double quotes.
fn check_csv(path: &Path) -> Result<(), String> {
    let file = open_file(path, "csv")?;
    let mut head = Vec::new();
    file.take(CSV_BYTES)
        .read_to_end(&mut head)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let text = match std::str::from_utf8(&head) {
        Ok(t) => t,
        // The read may have cut a character at the limit.
        Err(e) if e.error_len().is_none() => {
            std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(e) => {
            return Err(format!(
                "{} is not UTF-8 text (byte {})",
                path.display(),
                e.valid_up_to()
            ));
        }
    };
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default().trim_end_matches('\r');
    if header.trim().is_empty() {
        return Err(format!("{} has no header line", path.display()));
    }
    let delim = ['\t', ',', ';']
        .into_iter()
        .find(|d| header.contains(*d))
        .unwrap_or(',');
    let want = count_delims(header, delim);
    let complete = (text.len() as u64) < CSV_BYTES;
    let body: Vec<&str> = lines.take(CSV_LINES).collect();
    let n = body.len();
    for (i, line) in body.into_iter().enumerate() {
        // The last line read may be cut by the byte limit.
        if line.is_empty() || (!complete && i + 1 == n) {
            continue;
        }
        let got = count_delims(line.trim_end_matches('\r'), delim);
        if got != want {
            return Err(format!(
                "{}: line {} has {} fields, the header has {}",
                path.display(),
                i + 2,
                got + 1,
                want + 1
            ));
        }
    }
    Ok(())
}

fn count_delims(line: &str, delim: char) -> usize {
    let mut quoted = false;
    line.chars()
        .filter(|&c| {
            if c == '"' {
                quoted = !quoted;
            }
            c == delim && !quoted
        })
        .count()
}

fn check_json(path: &Path) -> Result<(), String> {
    let file = open_file(path, "json")?;
    serde_json::from_reader::<_, serde::de::IgnoredAny>(BufReader::new(file))
        .map(|_| ())
        .map_err(|e| format!("{} is not JSON: {e}", path.display()))
}

/// NetCDF classic (`CDF\x01`), 64-bit offset (`CDF\x02`), CDF-5
/// (`CDF\x05`) or NetCDF-4 (the HDF5 signature).
fn check_netcdf(path: &Path) -> Result<(), String> {
    let file = open_file(path, "netcdf")?;
    let mut magic = Vec::new();
    BufReader::new(file)
        .take(8)
        .read_to_end(&mut magic)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let classic = magic.len() >= 4 && &magic[..3] == b"CDF" && matches!(magic[3], 1 | 2 | 5);
    let hdf5 = magic == b"\x89HDF\r\n\x1a\n";
    if classic || hdf5 {
        Ok(())
    } else {
        Err(format!(
            "{} is not NetCDF (no CDF or HDF5 signature)",
            path.display()
        ))
    }
}

fn check_zarr(path: &Path) -> Result<(), String> {
    if !path.is_dir() {
        return Err(format!(
            "{} is not a directory (a Zarr store is one)",
            path.display()
        ));
    }
    if [".zgroup", ".zarray", "zarr.json"]
        .iter()
        .any(|f| path.join(f).is_file())
    {
        Ok(())
    } else {
        Err(format!(
            "{} is not a Zarr store (no .zgroup, .zarray or zarr.json)",
            path.display()
        ))
    }
}

/// The first line of `r`, without its line ending (at most 1 MiB).
pub(crate) fn first_line(r: impl Read) -> std::io::Result<String> {
    let mut line = String::new();
    BufReader::new(r.take(1 << 20)).read_line(&mut line)?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}
