//! Client options, who the local user is, and known_hosts helpers.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How to reach and trust remote hosts. [`SshOptions::from_env`] is the
/// usual start; the fields can be changed after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshOptions {
    /// Private keys to try, in order (after the agent). Passphrase-protected
    /// keys work only through ssh-agent.
    pub identities: Vec<PathBuf>,
    /// known_hosts files holding the keys of trusted hosts; missing files are
    /// skipped. A host whose key is in none of them is refused.
    pub known_hosts: Vec<PathBuf>,
    /// Limit for opening the TCP connection (per address).
    pub connect_timeout: Duration,
    /// Try the keys of ssh-agent first (when `SSH_AUTH_SOCK` is set).
    pub use_agent: bool,
    /// Limit for each blocking step of an open connection (handshake, one
    /// read or write); a command that prints nothing for longer than this
    /// fails as timed out. `Duration::ZERO` waits forever.
    pub timeout: Duration,
}

impl Default for SshOptions {
    /// No identity or known_hosts file; agent on; 10 s to connect, 60 s per
    /// blocking step.
    fn default() -> Self {
        Self {
            identities: Vec::new(),
            known_hosts: Vec::new(),
            connect_timeout: Duration::from_secs(10),
            use_agent: true,
            timeout: Duration::from_secs(60),
        }
    }
}

impl SshOptions {
    /// Options from the environment:
    /// - identities: `$TWINFLOW_SSH_IDENTITY` (colon-separated paths), else
    ///   those of `~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa` that exist;
    /// - known_hosts: `$TWINFLOW_SSH_KNOWN_HOSTS` (colon-separated), else
    ///   `~/.ssh/known_hosts` and `/etc/ssh/ssh_known_hosts`;
    /// - the defaults of [`SshOptions::default`] for the rest.
    ///
    /// A leading `~/` in a listed path is the home directory.
    pub fn from_env() -> Self {
        Self::from_vars(
            std::env::var_os("TWINFLOW_SSH_IDENTITY"),
            std::env::var_os("TWINFLOW_SSH_KNOWN_HOSTS"),
            home_dir().as_deref(),
        )
    }

    fn from_vars(identity: Option<OsString>, known: Option<OsString>, home: Option<&Path>) -> Self {
        let identities = match path_list(identity, home) {
            Some(list) => list,
            None => home
                .map(|h| {
                    ["id_ed25519", "id_ecdsa", "id_rsa"]
                        .iter()
                        .map(|name| h.join(".ssh").join(name))
                        .filter(|p| p.is_file())
                        .collect()
                })
                .unwrap_or_default(),
        };
        let known_hosts = match path_list(known, home) {
            Some(list) => list,
            None => home
                .map(|h| h.join(".ssh/known_hosts"))
                .into_iter()
                .chain([PathBuf::from("/etc/ssh/ssh_known_hosts")])
                .collect(),
        };
        Self {
            identities,
            known_hosts,
            ..Self::default()
        }
    }
}

/// A colon-separated list of paths; `None` when unset or empty.
fn path_list(value: Option<OsString>, home: Option<&Path>) -> Option<Vec<PathBuf>> {
    let value = value.filter(|v| !v.is_empty())?;
    let list: Vec<PathBuf> = std::env::split_paths(&value)
        .filter(|p| !p.as_os_str().is_empty())
        .map(|p| match (p.strip_prefix("~"), home) {
            (Ok(rest), Some(h)) => h.join(rest),
            _ => p,
        })
        .collect();
    (!list.is_empty()).then_some(list)
}

/// `$HOME`, else the home directory of the password database.
pub(crate) fn home_dir() -> Option<PathBuf> {
    match std::env::var_os("HOME") {
        Some(h) if !h.is_empty() => Some(PathBuf::from(h)),
        _ => nix::unistd::User::from_uid(nix::unistd::getuid())
            .ok()
            .flatten()
            .map(|u| u.dir),
    }
}

/// The login name of this process's user (for targets without `user@`).
pub(crate) fn current_user() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "root".to_owned())
}

/// A path for messages, `~/...` under the home directory.
pub(crate) fn tilde(path: &Path) -> String {
    if let Some(home) = home_dir()
        && home != Path::new("/")
        && let Ok(rest) = path.strip_prefix(&home)
    {
        return Path::new("~").join(rest).display().to_string();
    }
    path.display().to_string()
}

/// The files as a list for messages: `~/.ssh/known_hosts, /etc/ssh/ssh_known_hosts`.
pub(crate) fn files_label(files: &[PathBuf]) -> String {
    if files.is_empty() {
        return "any known_hosts file (none configured)".to_owned();
    }
    files
        .iter()
        .map(|f| tilde(f))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The known_hosts pattern OpenSSH writes for a host: `host` for port 22,
/// `[host]:port` otherwise.
pub(crate) fn host_pattern(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_owned()
    } else {
        format!("[{host}]:{port}")
    }
}

/// The key types that known_hosts text lists for exactly this host pattern
/// (plain entries; hashed ones and wildcards are not matched), in order.
pub(crate) fn known_key_types(text: &str, pattern: &str) -> Vec<String> {
    let mut types: Vec<String> = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let Some(hosts) = fields.next() else { continue };
        if hosts.starts_with('#') || hosts.starts_with('@') {
            continue;
        }
        let Some(key_type) = fields.next() else {
            continue;
        };
        let listed = hosts.split(',').any(|h| h.eq_ignore_ascii_case(pattern));
        if listed && !types.iter().any(|t| t == key_type) {
            types.push(key_type.to_owned());
        }
    }
    types
}

/// Host key algorithms to prefer, from known key types (`ssh-rsa` keys sign
/// with the SHA-2 algorithms first).
pub(crate) fn host_key_algorithms(key_types: &[String]) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for t in key_types {
        let algs: &[&'static str] = match t.as_str() {
            "ssh-ed25519" => &["ssh-ed25519"],
            "ecdsa-sha2-nistp256" => &["ecdsa-sha2-nistp256"],
            "ecdsa-sha2-nistp384" => &["ecdsa-sha2-nistp384"],
            "ecdsa-sha2-nistp521" => &["ecdsa-sha2-nistp521"],
            "ssh-rsa" => &["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"],
            _ => &[],
        };
        for a in algs {
            if !out.contains(a) {
                out.push(a);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_existing_standard_keys() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir(home.path().join(".ssh")).unwrap();
        std::fs::write(home.path().join(".ssh/id_rsa"), "k").unwrap();
        std::fs::write(home.path().join(".ssh/id_ed25519"), "k").unwrap();
        let o = SshOptions::from_vars(None, None, Some(home.path()));
        assert_eq!(
            o.identities,
            vec![
                home.path().join(".ssh/id_ed25519"),
                home.path().join(".ssh/id_rsa")
            ]
        );
        assert_eq!(
            o.known_hosts,
            vec![
                home.path().join(".ssh/known_hosts"),
                PathBuf::from("/etc/ssh/ssh_known_hosts")
            ]
        );
        assert_eq!(o.connect_timeout, Duration::from_secs(10));
        assert!(o.use_agent);
    }

    #[test]
    fn variables_are_colon_separated_lists() {
        let home = Path::new("/home/u");
        let o = SshOptions::from_vars(
            Some("/k/a::~/k/b".into()),
            Some("/kh/1:/kh/2".into()),
            Some(home),
        );
        assert_eq!(o.identities, vec![PathBuf::from("/k/a"), home.join("k/b")]);
        assert_eq!(
            o.known_hosts,
            vec![PathBuf::from("/kh/1"), PathBuf::from("/kh/2")]
        );
        // empty means unset
        let o = SshOptions::from_vars(Some("".into()), Some(":".into()), Some(home));
        assert!(o.identities.is_empty(), "no ~/.ssh/id_* under /home/u");
        assert_eq!(o.known_hosts[0], home.join(".ssh/known_hosts"));
    }

    #[test]
    fn no_home_no_defaults() {
        let o = SshOptions::from_vars(None, None, None);
        assert!(o.identities.is_empty());
        assert_eq!(
            o.known_hosts,
            vec![PathBuf::from("/etc/ssh/ssh_known_hosts")]
        );
    }

    #[test]
    fn known_key_types_match_the_exact_pattern() {
        let text = "\
# comment
[127.0.0.1]:2322 ssh-rsa AAAA
other,[127.0.0.1]:2322 ssh-ed25519 AAAA
127.0.0.1 ecdsa-sha2-nistp256 AAAA
@cert-authority [127.0.0.1]:2322 ssh-ed25519 AAAA
|1|abc=|def= ssh-ed25519 AAAA
[127.0.0.1]:2322 ssh-rsa BBBB
";
        assert_eq!(
            known_key_types(text, &host_pattern("127.0.0.1", 2322)),
            vec!["ssh-rsa", "ssh-ed25519"]
        );
        assert_eq!(
            known_key_types(text, &host_pattern("127.0.0.1", 22)),
            vec!["ecdsa-sha2-nistp256"]
        );
        assert_eq!(
            host_key_algorithms(&["ssh-rsa".into(), "ssh-ed25519".into(), "x".into()]),
            vec!["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa", "ssh-ed25519"]
        );
    }
}
