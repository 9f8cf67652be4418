//! The bearer token of the optional TCP listener: a random secret in
//! `<state dir>/daemon/token`, mode 0600. A token file anyone but its owner
//! may read (or that another user owns) is refused, by the daemon and by
//! the client, as ssh refuses such a private key.

use crate::DaemonError;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::Path;

/// Random bytes in a new token (written as hex).
const TOKEN_BYTES: usize = 32;
/// The shortest token a file may hold.
const MIN_TOKEN_LEN: usize = 32;

/// Reads the token in `path`, refusing a file its owner does not keep to
/// themselves (mode bits for group or others) or that another user owns.
pub fn read_token_file(path: &Path) -> Result<String, DaemonError> {
    let mut file = std::fs::File::open(path).map_err(|e| {
        DaemonError::Token(format!(
            "cannot read the token file {}: {e}",
            path.display()
        ))
    })?;
    let meta = file.metadata().map_err(|e| {
        DaemonError::Token(format!(
            "cannot read the token file {}: {e}",
            path.display()
        ))
    })?;
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(DaemonError::Token(format!(
            "the token file {} has mode {mode:04o}: others may read it, so it is not used \
             (`chmod 600 {}` if it is still secret; else remove it and restart the daemon for a new one)",
            path.display(),
            path.display()
        )));
    }
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        return Err(DaemonError::Token(format!(
            "the token file {} belongs to uid {}, not to uid {me}",
            path.display(),
            meta.uid()
        )));
    }
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(|e| {
        DaemonError::Token(format!(
            "cannot read the token file {}: {e}",
            path.display()
        ))
    })?;
    let token = text.trim();
    if token.len() < MIN_TOKEN_LEN || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(DaemonError::Token(format!(
            "the token file {} does not hold a token (at least {MIN_TOKEN_LEN} printable characters); \
             remove it and restart the daemon for a new one",
            path.display()
        )));
    }
    Ok(token.to_owned())
}

/// The token in `path`, made (random, mode 0600) if the file is missing.
pub(crate) fn ensure(path: &Path) -> Result<String, DaemonError> {
    if path.symlink_metadata().is_ok() {
        return read_token_file(path);
    }
    let token = random_hex()?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| DaemonError::io(path, &e))?;
    writeln!(file, "{token}")
        .and_then(|()| file.sync_all())
        .map_err(|e| DaemonError::io(path, &e))?;
    Ok(token)
}

fn random_hex() -> Result<String, DaemonError> {
    let mut bytes = [0u8; TOKEN_BYTES];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| DaemonError::Setup(format!("cannot read /dev/urandom for a token: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Whether `given` is `token`, in time that does not depend on where they
/// differ (only on their lengths).
pub(crate) fn matches(given: &[u8], token: &[u8]) -> bool {
    if given.len() != token.len() {
        return false;
    }
    let diff = given
        .iter()
        .zip(token)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn only_the_same_bytes_match() {
        assert!(matches(b"abcdef", b"abcdef"));
        assert!(!matches(b"abcdeg", b"abcdef"));
        assert!(!matches(b"Abcdef", b"abcdef"));
        assert!(!matches(b"abcde", b"abcdef"));
        assert!(!matches(b"", b"abcdef"));
    }

    #[test]
    fn a_new_token_is_random_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        let token = ensure(&path).unwrap();
        assert_eq!(token.len(), 2 * TOKEN_BYTES);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(ensure(&path).unwrap(), token, "kept across restarts");
        assert_eq!(read_token_file(&path).unwrap(), token);
        let other = dir.path().join("other");
        assert_ne!(ensure(&other).unwrap(), token);
    }

    #[test]
    fn a_readable_or_short_token_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        ensure(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = ensure(&path).unwrap_err().to_string();
        assert!(
            err.contains("mode 0640") && err.contains("chmod 600"),
            "{err}"
        );
        let short = dir.path().join("short");
        std::fs::write(&short, "abc\n").unwrap();
        std::fs::set_permissions(&short, std::fs::Permissions::from_mode(0o600)).unwrap();
        let err = read_token_file(&short).unwrap_err().to_string();
        assert!(err.contains("does not hold a token"), "{err}");
        let err = read_token_file(&dir.path().join("missing"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot read the token file"), "{err}");
    }
}
