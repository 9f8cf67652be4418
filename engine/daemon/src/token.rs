//! The bearer token of the optional TCP listener: a random secret kept on
//! the first line of the access file (`<state dir>/daemon/token`, mode
//! 0600; its format is [`crate::access`]'s), compared in constant time.

use crate::DaemonError;
use crate::access::AccessFile;
use std::io::Read as _;
use std::path::Path;

/// Random bytes in a new token (written as hex).
const TOKEN_BYTES: usize = 32;

/// Reads the token in the access (token) file `path`, refusing a file its
/// owner does not keep to themselves (mode bits for group or others) or
/// that another user owns. A file with the token alone (written before the
/// listener spoke TLS) is read too.
pub fn read_token_file(path: &Path) -> Result<String, DaemonError> {
    AccessFile::read(path).map(|access| access.token)
}

/// A new random token.
pub(crate) fn random_hex() -> Result<String, DaemonError> {
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

    #[test]
    fn only_the_same_bytes_match() {
        assert!(matches(b"abcdef", b"abcdef"));
        assert!(!matches(b"abcdeg", b"abcdef"));
        assert!(!matches(b"Abcdef", b"abcdef"));
        assert!(!matches(b"abcde", b"abcdef"));
        assert!(!matches(b"", b"abcdef"));
    }

    #[test]
    fn new_tokens_are_random() {
        let token = random_hex().unwrap();
        assert_eq!(token.len(), 2 * TOKEN_BYTES);
        assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(random_hex().unwrap(), token);
    }
}
