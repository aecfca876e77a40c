//! Credentials: flags first, then a docker-style `config.json` (`auths.<host>.auth` or
//! username/password, `identitytoken`, `registrytoken`). Credential helpers are not run.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use std::path::PathBuf;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Credentials {
    #[default]
    Anonymous,
    Basic {
        username: String,
        password: String,
    },
    /// A bearer token sent as is.
    Bearer(String),
}

/// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn docker_config_path() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(d).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json"))
}

/// Credentials for `registry` from a docker config.json's text, if it names it.
pub fn from_docker_config(text: &str, registry: &str) -> Option<Credentials> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let auths = v.get("auths")?.as_object()?;
    let hub = registry == "docker.io" || registry == "index.docker.io" || registry == "registry-1.docker.io";
    let entry = auths.iter().find(|(k, _)| {
        let host = k.trim_start_matches("https://").trim_start_matches("http://");
        let host = host.split('/').next().unwrap_or(host);
        host == registry || (hub && (host == "index.docker.io" || host == "docker.io"))
    })?;
    let e = entry.1;
    let s = |k: &str| e.get(k).and_then(|x| x.as_str()).filter(|x| !x.is_empty()).map(String::from);
    if let Some(t) = s("registrytoken") {
        return Some(Credentials::Bearer(t));
    }
    if let (Some(u), Some(p)) = (s("username"), s("password")) {
        return Some(Credentials::Basic { username: u, password: p });
    }
    if let Some(a) = s("auth") {
        let decoded = String::from_utf8(B64.decode(a.trim()).ok()?).ok()?;
        let (u, p) = decoded.split_once(':')?;
        return Some(Credentials::Basic { username: u.into(), password: p.into() });
    }
    // An identity token is a refresh token for the OAuth2 flow; as a password it works with the
    // basic-authenticated token endpoints most registries run.
    s("identitytoken").map(|t| Credentials::Basic { username: "<token>".into(), password: t })
}

/// Credentials from the user's docker config for `registry` (anonymous when there are none).
pub fn lookup(registry: &str) -> Credentials {
    docker_config_path().and_then(|p| std::fs::read_to_string(p).ok()).and_then(|t| from_docker_config(&t, registry)).unwrap_or_default()
}

pub(crate) fn basic_header(username: &str, password: &str) -> String {
    format!("Basic {}", B64.encode(format!("{username}:{password}")))
}

/// One `WWW-Authenticate` challenge: scheme and parameters.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Challenge {
    pub scheme: String,
    pub params: std::collections::BTreeMap<String, String>,
}

pub(crate) fn parse_challenge(h: &str) -> Challenge {
    let (scheme, rest) = h.trim().split_once(' ').unwrap_or((h.trim(), ""));
    let mut params = std::collections::BTreeMap::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let Some((k, v)) = rest.split_once('=') else { break };
        let k = k.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let v = v.trim_start();
        let (val, tail) = if let Some(q) = v.strip_prefix('"') {
            let end = q.find('"').unwrap_or(q.len());
            (&q[..end], q.get(end + 1..).unwrap_or(""))
        } else {
            let end = v.find(',').unwrap_or(v.len());
            (&v[..end], &v[end..])
        };
        params.insert(k, val.to_string());
        rest = tail.trim_start().trim_start_matches(',').trim_start();
    }
    Challenge { scheme: scheme.to_ascii_lowercase(), params }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_config_and_challenges() {
        let cfg = r#"{"auths":{"https://127.0.0.1:5000":{"auth":"dXNlcjpwYXNz"},"ghcr.io":{"registrytoken":"t0k"},"https://index.docker.io/v1/":{"username":"u","password":"p"}}}"#;
        assert_eq!(from_docker_config(cfg, "127.0.0.1:5000"), Some(Credentials::Basic { username: "user".into(), password: "pass".into() }));
        assert_eq!(from_docker_config(cfg, "ghcr.io"), Some(Credentials::Bearer("t0k".into())));
        assert_eq!(from_docker_config(cfg, "docker.io"), Some(Credentials::Basic { username: "u".into(), password: "p".into() }));
        assert_eq!(from_docker_config(cfg, "other.io"), None);
        let c = parse_challenge(r#"Bearer realm="https://auth.io/token",service="registry.io",scope="repository:a/b:pull,push""#);
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.params["scope"], "repository:a/b:pull,push");
        assert_eq!(c.params["realm"], "https://auth.io/token");
        assert_eq!(parse_challenge(r#"Basic realm="kiln""#).params["realm"], "kiln");
    }
}
