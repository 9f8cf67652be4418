//! The one remote command that checks a download before it starts: the
//! first symbolic link that leads out of the root (or nowhere), and what
//! the downloaded path is.

use twinflow_core::shell_quote;

/// Marks where the download probe's answer starts (a login shell may print
/// before it).
const PROBE_MARK: &str = "twinflow-probe";

/// One remote command that lists the symbolic links met in `remote`
/// (itself, or below it through linked directories, `find -L`) that lead
/// outside `root` (both resolved with `readlink -f`) or to nothing, then
/// says what `remote` is. Its stdout is NUL-separated words after
/// [`PROBE_MARK`]: `link PATH WRITTEN RESOLVED` (RESOLVED empty: missing)
/// for each such link, then `dir`, `file MODE` or `missing`.
pub(super) fn download_probe(remote: &str, root: &str) -> String {
    let (q, r) = (shell_quote(remote), shell_quote(root));
    // run by `find -exec sh -c`: $1 the resolved root, then the paths
    let each = "R=$1; shift; for f; do test -h \"$f\" || continue; \
        if test -e \"$f\"; then t=$(readlink -f -- \"$f\"); \
        case $t in \"$R\"|\"$R\"/*) continue ;; esac; test \"$R\" = / && continue; \
        else t=; fi; \
        printf \"link\\000%s\\000%s\\000%s\\000\" \"$f\" \"$(readlink -- \"$f\")\" \"$t\"; done";
    format!(
        "printf '{PROBE_MARK}\\000'; \
         if test -e {q} || test -h {q}; then \
           R=$(readlink -f -- {r}) && test -n \"$R\" || {{ echo 'twinflow-ssh: readlink -f failed on '{r} >&2; exit 1; }}; \
           find -L {q} -exec sh -c '{each}' sh \"$R\" {{}} + 2>/dev/null; \
         fi; \
         if test -d {q}; then printf 'dir\\000'; \
         elif test -e {q}; then printf 'file\\000%s\\000' \"$(stat -L -c %a -- {q} 2>/dev/null)\"; \
         else printf 'missing\\000'; fi"
    )
}

/// What [`download_probe`] found.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Probe {
    /// The first link out: path, target as written, resolved (if it exists).
    pub(super) link: Option<(String, String, Option<String>)>,
    /// `dir`, `file` or `missing`.
    pub(super) kind: String,
    /// A file's permission bits in octal.
    pub(super) mode: Option<String>,
}

/// Reads [`download_probe`]'s stdout; `None` if it did not answer.
pub(super) fn parse_probe(stdout: &[u8]) -> Option<Probe> {
    let text = String::from_utf8_lossy(stdout);
    let (_, answer) = text.split_once(&format!("{PROBE_MARK}\0"))?;
    let mut words = answer.split('\0');
    let mut link = None;
    loop {
        match words.next()? {
            "link" => {
                let (path, to, resolved) = (words.next()?, words.next()?, words.next()?);
                link.get_or_insert_with(|| {
                    let resolved = (!resolved.is_empty()).then(|| resolved.to_owned());
                    (path.to_owned(), to.to_owned(), resolved)
                });
            }
            kind @ ("dir" | "missing") => {
                return Some(Probe {
                    link,
                    kind: kind.to_owned(),
                    mode: None,
                });
            }
            "file" => {
                return Some(Probe {
                    link,
                    kind: "file".to_owned(),
                    mode: words.next().map(str::to_owned),
                });
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::Path;
    use std::process::Command;

    /// Runs the download probe with this machine's `sh`, as the remote would.
    fn probe(remote: &Path, root: &Path) -> Probe {
        let out = Command::new("/bin/sh")
            .arg("-c")
            .arg(download_probe(
                remote.to_str().unwrap(),
                root.to_str().unwrap(),
            ))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        parse_probe(&[b"motd\n".as_slice(), &out.stdout].concat()).unwrap()
    }

    #[test]
    fn the_download_probe_finds_links_out_of_the_root() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        // a root whose name needs quoting
        let root = dir.path().join("it's a dir");
        fs::create_dir_all(root.join("out/sub")).unwrap();
        fs::write(root.join("out/a.txt"), "a").unwrap();
        fs::write(dir.path().join("secret"), "s").unwrap();
        symlink("../a.txt", root.join("out/sub/in.txt")).unwrap();
        symlink("sub", root.join("out/linked")).unwrap();
        let clean = Probe {
            link: None,
            kind: "dir".into(),
            mode: None,
        };
        assert_eq!(probe(&root.join("out"), &root), clean);
        let file = probe(&root.join("out/sub/in.txt"), &root);
        assert_eq!((file.link, file.kind), (None, "file".to_owned()));
        assert_eq!(
            probe(&root.join("nope"), &root),
            Probe {
                link: None,
                kind: "missing".into(),
                mode: None
            }
        );
        // a link out, behind a linked directory: found through the link
        symlink("../../../secret", root.join("out/sub/x")).unwrap();
        let found = probe(&root.join("out/linked"), &root);
        let secret = dir.path().canonicalize().unwrap().join("secret");
        assert_eq!(
            found.link,
            Some((
                format!("{}/out/linked/x", root.display()),
                "../../../secret".to_owned(),
                Some(secret.display().to_string())
            ))
        );
        fs::remove_file(root.join("out/sub/x")).unwrap();
        // the path itself a link out, or dangling
        symlink("/etc/hostname", root.join("o.txt")).unwrap();
        let found = probe(&root.join("o.txt"), &root).link.unwrap();
        assert_eq!(found.1, "/etc/hostname");
        symlink("gone", root.join("d.txt")).unwrap();
        let found = probe(&root.join("d.txt"), &root);
        assert_eq!(
            found.link,
            Some((format!("{}/d.txt", root.display()), "gone".to_owned(), None))
        );
        assert_eq!(found.kind, "missing");
        // reached through a linked root
        let alias = dir.path().join("alias");
        symlink(&root, &alias).unwrap();
        assert_eq!(probe(&alias.join("out"), &alias), clean);
    }

    #[test]
    fn probe_answers_are_read_after_the_mark() {
        assert_eq!(parse_probe(b"no mark"), None);
        assert_eq!(parse_probe(b"twinflow-probe\0what\0"), None);
        let p = parse_probe(
            b"hi\ntwinflow-probe\0link\0/w/o\0/etc/x\0/etc/x\0link\0/w/p\0q\0\0file\x00640\0",
        )
        .unwrap();
        assert_eq!(
            p.link,
            Some(("/w/o".into(), "/etc/x".into(), Some("/etc/x".into())))
        );
        assert_eq!((p.kind.as_str(), p.mode.as_deref()), ("file", Some("640")));
    }
}
