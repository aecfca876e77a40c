//! References: `HOST[:PORT]/REPO[:TAG][@sha256:DIGEST]` for a registry (an `oci://` prefix is
//! accepted), `NAME[:VERSION]` for the local store.

use crate::error::RegistryError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reference {
    Remote(RemoteRef),
    /// A name (and version) in the local store.
    Local {
        name: String,
        tag: Option<String>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteRef {
    /// `host[:port]` as the user wrote it (`docker.io` is the Docker Hub).
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl RemoteRef {
    /// The tag or digest to resolve (a digest wins).
    pub fn reference(&self) -> Option<&str> {
        self.digest.as_deref().or(self.tag.as_deref())
    }
    /// The host the API lives on.
    pub fn api_host(&self) -> &str {
        if self.registry == "docker.io" || self.registry == "index.docker.io" { "registry-1.docker.io" } else { &self.registry }
    }
}

impl std::fmt::Display for RemoteRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// Is `s` a valid tag (`[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`)?
pub fn is_tag(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphanumeric() || c == b'_')
        && s.len() <= 128
        && b.all(|c| c.is_ascii_alphanumeric() || b"._-".contains(&c))
}

/// A version as a tag: semver build metadata (`+`) is not allowed in tags, so it becomes `_`.
pub fn version_tag(version: &str) -> String {
    version.replace('+', "_")
}

fn is_repo_component(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(&c))
        && s.bytes().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.bytes().last().is_some_and(|c| c.is_ascii_alphanumeric())
}

pub fn parse(input: &str) -> Result<Reference, RegistryError> {
    let bad = || RegistryError::BadReference(input.to_string());
    let s = input.strip_prefix("oci://").unwrap_or(input);
    let (rest, digest) = match s.split_once('@') {
        Some((r, d)) => (r, Some(crate::media::digest_hex(d).map(|_| d.to_string()).ok_or_else(bad)?)),
        None => (s, None),
    };
    let (first, _) = rest.split_once('/').unwrap_or((rest, ""));
    let is_remote = rest.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    // The tag is after the last ':' that follows the last '/'.
    let slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
    let (path, tag) = match rest[slash..].rfind(':') {
        Some(i) => (&rest[..slash + i], Some(rest[slash + i + 1..].to_string())),
        None => (rest, None),
    };
    if tag.as_deref().is_some_and(|t| !is_tag(t)) {
        return Err(bad());
    }
    if !is_remote {
        if digest.is_some() || !is_repo_component(path) {
            return Err(bad());
        }
        return Ok(Reference::Local { name: path.to_string(), tag });
    }
    let (registry, repository) = path.split_once('/').ok_or_else(bad)?;
    if registry.is_empty() || !repository.split('/').all(is_repo_component) {
        return Err(bad());
    }
    let repository = if (registry == "docker.io" || registry == "index.docker.io") && !repository.contains('/') {
        format!("library/{repository}")
    } else {
        repository.to_string()
    };
    Ok(Reference::Remote(RemoteRef { registry: registry.to_string(), repository, tag, digest }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(s: &str) -> RemoteRef {
        match parse(s) {
            Ok(Reference::Remote(r)) => r,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn parses_registry_and_local_references() {
        let r = remote("127.0.0.1:5000/models/resnet:1.2.0");
        assert_eq!((r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()), ("127.0.0.1:5000", "models/resnet", Some("1.2.0")));
        let r = remote("oci://ghcr.io/acme/m@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
        assert_eq!(r.reference(), Some("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));
        assert_eq!(remote("localhost/m").tag, None);
        assert_eq!(remote("docker.io/m:1").repository, "library/m");
        assert_eq!(parse("resnet:1.0.0").ok(), Some(Reference::Local { name: "resnet".into(), tag: Some("1.0.0".into()) }));
        for bad in ["", "Host.io/UPPER:1", "a.io/m:bad tag", "m@sha256:zz", "a.io/m@md5:00", "a.io/../m"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(version_tag("1.0.0+build.5"), "1.0.0_build.5");
    }
}
