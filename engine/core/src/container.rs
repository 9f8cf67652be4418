//! Container image references as a step's `container:` names them, parsed
//! into [`ImageRef`]: a registry image (`docker://…` or a bare
//! `name[:tag][@digest]`), a SIF in a registry (`oras://…`), a local `.sif`
//! file, or an image in the local podman/docker store (`localhost/…`).
//!
//! Parsing is pure (no file or registry is looked at); the plan keeps the
//! reference as written ([`crate::ContainerSpec::image`]), so the plan JSON is
//! unchanged, and [`crate::ContainerSpec::image_ref`] parses it on demand.

use std::fmt;

/// An image found on the host that runs a step's tasks, as the executor's
/// [`crate::Executor::resolve_image`] returns it (built by
/// `twinflow-launch`'s resolvers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedImage {
    /// The reference it was resolved from.
    pub image: ImageRef,
    /// The runtime it was resolved for.
    pub runtime: crate::ContainerRuntime,
    /// `sha256:<hex>`: what a task records, its cache key takes in and the
    /// provenance crate names.
    pub digest: String,
    /// What the launch gives the runtime: the image id (podman, docker) or
    /// the SIF's absolute path (apptainer, singularity).
    pub run_ref: String,
}

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ImageRef {
    /// An OCI image in a registry: `docker://REF`, or a bare `REF`
    /// (`python:3.12-slim`, `ghcr.io/biodt/landis:7`), which means the same.
    Docker(OciRef),
    /// A SIF stored in an OCI registry (`oras://REF`): Apptainer only.
    Oras(OciRef),
    /// A SIF file on the machine that runs the task (a path ending in `.sif`).
    Sif(String),
    /// An image in the local podman or docker store (`localhost/NAME[:TAG]`),
    /// built or imported there: never pulled.
    Local(OciRef),
}

/// `[registry/]path[:tag][@algorithm:hex]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OciRef {
    /// Registry and repository path, e.g. `ghcr.io/biodt/landis`.
    pub name: String,
    /// Tag, e.g. `7`.
    pub tag: Option<String>,
    /// Content digest, e.g. `sha256:4f…`.
    pub digest: Option<String>,
}

/// A reference that is not an image reference; displays as a lowercase
/// fragment naming it: "`docker://` is not an image reference: empty name".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRefError {
    /// The reference as written.
    pub reference: String,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for ImageRefError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not an image reference: {}",
            self.reference, self.reason
        )
    }
}

impl std::error::Error for ImageRefError {}

impl ImageRef {
    /// Parses a reference as a step's `container:` writes it.
    pub fn parse(text: &str) -> Result<Self, ImageRefError> {
        let err = |reason: String| ImageRefError {
            reference: text.to_owned(),
            reason,
        };
        if text.is_empty() {
            return Err(err("it is empty".into()));
        }
        if let Some(c) = text.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(err(format!("it contains {c:?}")));
        }
        if let Some(rest) = text.strip_prefix("docker://") {
            return OciRef::parse(rest).map(Self::Docker).map_err(err);
        }
        if let Some(rest) = text.strip_prefix("oras://") {
            return OciRef::parse(rest).map(Self::Oras).map_err(err);
        }
        if let Some((scheme, _)) = text.split_once("://") {
            return Err(err(format!(
                "unsupported scheme `{scheme}://` (use docker://, oras://, a .sif path or localhost/NAME)"
            )));
        }
        if text.ends_with(".sif") {
            return Ok(Self::Sif(text.to_owned()));
        }
        if text.starts_with('/') || text.starts_with("./") || text.starts_with("../") {
            return Err(err("a path names a .sif file".into()));
        }
        let oci = OciRef::parse(text).map_err(err)?;
        if oci.name.starts_with("localhost/") {
            Ok(Self::Local(oci))
        } else {
            Ok(Self::Docker(oci))
        }
    }

    /// The digest the reference pins, if it pins one.
    pub fn digest(&self) -> Option<&str> {
        match self {
            Self::Docker(o) | Self::Oras(o) | Self::Local(o) => o.digest.as_deref(),
            Self::Sif(_) => None,
        }
    }
}

impl fmt::Display for ImageRef {
    /// The canonical spelling: `docker://` written out for a bare reference.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Docker(o) => write!(f, "docker://{o}"),
            Self::Oras(o) => write!(f, "oras://{o}"),
            Self::Sif(p) => f.write_str(p),
            Self::Local(o) => write!(f, "{o}"),
        }
    }
}

impl fmt::Display for OciRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl OciRef {
    /// Parses `[registry/]path[:tag][@algorithm:hex]`; the error is the reason.
    fn parse(text: &str) -> Result<Self, String> {
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => {
                check_digest(digest)?;
                (rest, Some(digest.to_owned()))
            }
            None => (text, None),
        };
        // A tag follows the last `:` after the last `/` (a `:` before it is a port).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let tag = &rest[last_slash + i + 1..];
                check_tag(tag)?;
                (&rest[..last_slash + i], Some(tag.to_owned()))
            }
            None => (rest, None),
        };
        check_name(name)?;
        Ok(Self {
            name: name.to_owned(),
            tag,
            digest,
        })
    }
}

fn check_digest(digest: &str) -> Result<(), String> {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Err(format!("digest `{digest}` is not ALGORITHM:HEX"));
    };
    let len = match algorithm {
        "sha256" => 64,
        "sha512" => 128,
        _ => {
            return Err(format!(
                "digest algorithm `{algorithm}` is not sha256 or sha512"
            ));
        }
    };
    if hex.len() != len
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(format!(
            "digest `{digest}` is not {len} lowercase hex digits after `{algorithm}:`"
        ));
    }
    Ok(())
}

fn check_tag(tag: &str) -> Result<(), String> {
    let ok = (1..=128).contains(&tag.len())
        && tag
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "tag `{tag}` is not 1-128 letters, digits, `_`, `.` or `-` (not starting with `.` or `-`)"
        ))
    }
}

/// `[host[:port]/]component(/component)*`, components lowercase.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty name".into());
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    let first = parts[0];
    let is_host = parts.len() > 1
        && (first.contains('.')
            || first.contains(':')
            || first == "localhost"
            || first.bytes().any(|b| b.is_ascii_uppercase()));
    if is_host {
        let (host, port) = first.split_once(':').unwrap_or((first, ""));
        let host_ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        let port_ok = first.find(':').is_none()
            || (!port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()));
        if !host_ok || !port_ok {
            return Err(format!("registry `{first}` is not HOST[:PORT]"));
        }
        parts.remove(0);
    }
    for part in parts {
        let ok = !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
            && part
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphanumeric())
            && part
                .bytes()
                .last()
                .is_some_and(|b| b.is_ascii_alphanumeric());
        if !ok {
            return Err(format!(
                "name component `{part}` is not lowercase letters, digits and `.`, `_`, `-` between them"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oci(name: &str, tag: Option<&str>, digest: Option<&str>) -> OciRef {
        OciRef {
            name: name.into(),
            tag: tag.map(Into::into),
            digest: digest.map(Into::into),
        }
    }

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn every_kind_parses_and_displays_canonically() {
        let cases = [
            (
                "docker://ghcr.io/biodt/landis:7",
                ImageRef::Docker(oci("ghcr.io/biodt/landis", Some("7"), None)),
                "docker://ghcr.io/biodt/landis:7",
            ),
            (
                "python:3.12-slim",
                ImageRef::Docker(oci("python", Some("3.12-slim"), None)),
                "docker://python:3.12-slim",
            ),
            (
                "registry.example.org:5000/a/b",
                ImageRef::Docker(oci("registry.example.org:5000/a/b", None, None)),
                "docker://registry.example.org:5000/a/b",
            ),
            (
                "oras://ghcr.io/x/y:1",
                ImageRef::Oras(oci("ghcr.io/x/y", Some("1"), None)),
                "oras://ghcr.io/x/y:1",
            ),
            (
                "/scratch/images/landis.sif",
                ImageRef::Sif("/scratch/images/landis.sif".into()),
                "/scratch/images/landis.sif",
            ),
            (
                "images/landis.sif",
                ImageRef::Sif("images/landis.sif".into()),
                "images/landis.sif",
            ),
            (
                "localhost/twinflow-busybox:1",
                ImageRef::Local(oci("localhost/twinflow-busybox", Some("1"), None)),
                "localhost/twinflow-busybox:1",
            ),
        ];
        for (text, want, shown) in cases {
            let got = ImageRef::parse(text).unwrap();
            assert_eq!(got, want, "{text}");
            assert_eq!(got.to_string(), shown, "{text}");
        }
        let pinned = ImageRef::parse(&format!("docker://ghcr.io/a/b:1@{D}")).unwrap();
        assert_eq!(
            pinned,
            ImageRef::Docker(oci("ghcr.io/a/b", Some("1"), Some(D)))
        );
        assert_eq!(pinned.digest(), Some(D));
    }

    #[test]
    fn bad_references_give_lowercase_reasons() {
        let cases = [
            ("", "`` is not an image reference: it is empty"),
            ("docker://", "empty name"),
            ("library://sylabs/x", "unsupported scheme `library://`"),
            ("/scratch/images/landis", "a path names a .sif file"),
            ("docker://Ghcr/UPPER", "name component `UPPER`"),
            ("a b", "contains ' '"),
            ("python:", "tag ``"),
            ("python@sha256:abc", "64 lowercase hex digits"),
            ("python@md5:abc", "digest algorithm `md5`"),
            ("docker://a//b", "name component ``"),
            ("localhost:x/y", "registry `localhost:x`"),
        ];
        for (text, fragment) in cases {
            let e = ImageRef::parse(text).unwrap_err().to_string();
            assert!(e.contains(fragment), "{text:?}: {e}");
            assert!(e.starts_with('`'), "{e}");
        }
    }
}
