//! The OCI distribution API over HTTP(S): blobs (monolithic or chunked upload), manifests,
//! referrers; basic and bearer-token auth; retries with backoff on 5xx, 429 and dropped
//! connections. HTTPS unless the caller says the registry is insecure.

use crate::auth::{Credentials, basic_header, parse_challenge};
use crate::error::{RegistryError, io};
use crate::media::{Descriptor, ImageIndex, OCI_INDEX, OCI_MANIFEST, digest_hex, digest_of};
use crate::reference::RemoteRef;
use crate::repo::{Content, PutManifest, Repository, copy_verified};
use std::io::{Read, Write};
use std::sync::Mutex;
use std::time::Duration;
use ureq::http::{Request, Response};

#[derive(Clone, Debug)]
pub struct RemoteOptions {
    /// Plain HTTP (only when the user says so).
    pub insecure: bool,
    pub credentials: Credentials,
    /// Retries after the first attempt, on 5xx, 429 and connection failures.
    pub retries: u32,
    /// First backoff; doubled each retry (capped at 10 s).
    pub backoff: Duration,
    /// Blobs larger than this are uploaded in chunks of this size.
    pub chunk_size: u64,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        RemoteOptions { insecure: false, credentials: Credentials::Anonymous, retries: 4, backoff: Duration::from_millis(250), chunk_size: 16 << 20 }
    }
}

pub struct Remote {
    agent: ureq::Agent,
    base: String,
    r: RemoteRef,
    opts: RemoteOptions,
    /// The Authorization header that worked last.
    auth: Mutex<Option<String>>,
}

const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

type Resp = Response<ureq::Body>;

fn header<'a>(r: &'a Resp, name: &str) -> Option<&'a str> {
    r.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The registry's error text (`{"errors":[{"code","message"}]}`) or the status line.
fn reason(r: &mut Resp) -> String {
    let body = r.body_mut().with_config().limit(64 << 10).read_to_vec().unwrap_or_default();
    let parsed = serde_json::from_slice::<serde_json::Value>(&body).ok().and_then(|v| {
        let errs = v.get("errors")?.as_array()?;
        Some(
            errs.iter()
                .map(|e| {
                    format!("{} {}", e.get("code").and_then(|c| c.as_str()).unwrap_or(""), e.get("message").and_then(|c| c.as_str()).unwrap_or(""))
                })
                .collect::<Vec<_>>()
                .join("; "),
        )
    });
    parsed.unwrap_or_else(|| r.status().canonical_reason().unwrap_or("").to_string())
}

/// Worth another try: the connection failed, was reset or timed out (not a TLS or protocol
/// mismatch, which fails the same way every time).
fn retryable(e: &ureq::Error) -> bool {
    use std::io::ErrorKind::*;
    match e {
        ureq::Error::Io(io) => {
            matches!(
                io.kind(),
                ConnectionReset | ConnectionAborted | ConnectionRefused | BrokenPipe | UnexpectedEof | TimedOut | Interrupted | NotConnected
            )
        }
        ureq::Error::ConnectionFailed | ureq::Error::Timeout(_) => true,
        _ => false,
    }
}

/// A transport error's text, with the likely way out for a TLS handshake against plain HTTP.
fn describe(e: &ureq::Error, insecure: bool) -> String {
    let text = e.to_string();
    let tls = text.contains("InvalidContentType") || text.contains("corrupt message") || matches!(e, ureq::Error::Rustls(_) | ureq::Error::Tls(_));
    if tls && !insecure { format!("{text} (TLS failed: if this registry speaks plain HTTP on a trusted network, add --insecure)") } else { text }
}

impl Remote {
    pub fn new(r: &RemoteRef, opts: RemoteOptions) -> Remote {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_recv_response(Some(Duration::from_secs(120)))
            .max_redirects(5)
            .build();
        let scheme = if opts.insecure { "http" } else { "https" };
        let auth = match &opts.credentials {
            Credentials::Bearer(t) => Some(format!("Bearer {t}")),
            _ => None,
        };
        Remote {
            agent: ureq::Agent::new_with_config(config),
            base: format!("{scheme}://{}", r.api_host()),
            r: r.clone(),
            opts,
            auth: Mutex::new(auth),
        }
    }

    fn url(&self, rest: &str) -> String {
        format!("{}/v2/{}/{rest}", self.base, self.r.repository)
    }

    fn absolute(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") { location.to_string() } else { format!("{}{location}", self.base) }
    }

    fn current_auth(&self) -> Option<String> {
        self.auth.lock().ok().and_then(|a| a.clone())
    }

    fn set_auth(&self, v: String) {
        if let Ok(mut a) = self.auth.lock() {
            *a = Some(v);
        }
    }

    /// One request, with auth challenges answered and retries on 5xx / 429 / dropped connections.
    fn send(&self, method: &str, url: &str, headers: &[(&str, String)], body: &[u8]) -> Result<Resp, RegistryError> {
        let mut attempt = 0;
        let mut auth_rounds = 0;
        loop {
            let mut b = Request::builder().method(method).uri(url);
            for (k, v) in headers {
                b = b.header(*k, v.as_str());
            }
            if let Some(a) = self.current_auth() {
                b = b.header("Authorization", a);
            }
            let bad = |e: ureq::http::Error| RegistryError::Transport { url: url.into(), reason: e.to_string(), attempts: 1 };
            let result = if method == "GET" || method == "HEAD" {
                self.agent.run(b.body(()).map_err(bad)?)
            } else {
                self.agent.run(b.body(body).map_err(bad)?)
            };
            let backoff = self.opts.backoff.saturating_mul(1 << attempt.min(6)).min(Duration::from_secs(10));
            match result {
                Err(e) if retryable(&e) && attempt < self.opts.retries => {
                    attempt += 1;
                    std::thread::sleep(backoff);
                }
                Err(e) => {
                    return Err(RegistryError::Transport { url: url.into(), reason: describe(&e, self.opts.insecure), attempts: attempt + 1 });
                }
                Ok(mut r) if r.status().as_u16() == 401 && auth_rounds < 2 => {
                    auth_rounds += 1;
                    self.answer_challenge(&mut r)?;
                }
                Ok(mut r) if r.status().as_u16() == 401 => {
                    return Err(RegistryError::Unauthorized { registry: self.r.registry.clone(), reason: reason(&mut r) });
                }
                Ok(r) if (r.status().is_server_error() || r.status().as_u16() == 429) && attempt < self.opts.retries => {
                    attempt += 1;
                    std::thread::sleep(backoff);
                }
                Ok(r) => return Ok(r),
            }
        }
    }

    fn answer_challenge(&self, r: &mut Resp) -> Result<(), RegistryError> {
        let unauthorized = |reason: String| RegistryError::Unauthorized { registry: self.r.registry.clone(), reason };
        let c = parse_challenge(header(r, "www-authenticate").unwrap_or(""));
        match (c.scheme.as_str(), &self.opts.credentials) {
            ("basic", Credentials::Basic { username, password }) => {
                let h = basic_header(username, password);
                if self.current_auth().as_deref() == Some(h.as_str()) {
                    return Err(unauthorized(format!("user '{username}' was refused")));
                }
                self.set_auth(h);
                Ok(())
            }
            ("basic", _) => Err(unauthorized("the registry asks for a username and password".into())),
            ("bearer", creds) => {
                let realm = c.params.get("realm").ok_or_else(|| unauthorized("a bearer challenge without a realm".into()))?;
                if realm.starts_with("http://") && !self.opts.insecure {
                    return Err(unauthorized(format!("the token endpoint {realm} is plain HTTP; credentials go there only with --insecure")));
                }
                let mut url = format!("{realm}?");
                if let Some(s) = c.params.get("service") {
                    url.push_str(&format!("service={}&", encode(s)));
                }
                let scope = c.params.get("scope").cloned().unwrap_or_else(|| format!("repository:{}:pull,push", self.r.repository));
                url.push_str(&format!("scope={}", encode(&scope)));
                let mut req = self.agent.get(&url);
                if let Credentials::Basic { username, password } = creds {
                    req = req.header("Authorization", basic_header(username, password));
                }
                let mut resp = req.call().map_err(|e| unauthorized(format!("token endpoint {realm}: {e}")))?;
                if !resp.status().is_success() {
                    return Err(unauthorized(format!("token endpoint {realm}: {} {}", resp.status().as_u16(), reason(&mut resp))));
                }
                let v: serde_json::Value =
                    serde_json::from_slice(&resp.body_mut().with_config().limit(1 << 20).read_to_vec().unwrap_or_default()).unwrap_or_default();
                let token = v
                    .get("token")
                    .or_else(|| v.get("access_token"))
                    .and_then(|t| t.as_str())
                    .ok_or_else(|| unauthorized(format!("token endpoint {realm} returned no token")))?;
                let h = format!("Bearer {token}");
                if self.current_auth().as_deref() == Some(h.as_str()) {
                    return Err(unauthorized(format!("the token for scope '{scope}' was refused")));
                }
                self.set_auth(h);
                Ok(())
            }
            (other, _) => Err(unauthorized(format!("unsupported authentication scheme '{other}'"))),
        }
    }

    fn status_error(&self, url: &str, r: &mut Resp) -> RegistryError {
        RegistryError::Status { url: url.into(), status: r.status().as_u16(), reason: reason(r) }
    }

    fn upload(&self, desc: &Descriptor, content: &Content) -> Result<(), RegistryError> {
        let start = self.url("blobs/uploads/");
        let mut r = self.send("POST", &start, &[("Content-Length", "0".into())], &[])?;
        if r.status().as_u16() != 202 {
            return Err(self.status_error(&start, &mut r));
        }
        let Some(location) = header(&r, "location").map(|l| self.absolute(l)) else {
            return Err(RegistryError::Status { url: start, status: 202, reason: "no Location header for the upload session".into() });
        };
        let mut location = location;
        let mut reader = content.open()?;
        let mut offset = 0u64;
        let chunk = self.opts.chunk_size.max(1);
        let mut final_body = Vec::new();
        if desc.size <= chunk {
            reader.read_to_end(&mut final_body).map_err(|e| io(std::path::Path::new(&desc.digest), e))?;
        } else {
            let mut buf = Vec::with_capacity(chunk as usize);
            while offset < desc.size {
                buf.clear();
                (&mut reader).take(chunk).read_to_end(&mut buf).map_err(|e| io(std::path::Path::new(&desc.digest), e))?;
                if buf.is_empty() {
                    return Err(RegistryError::DigestMismatch {
                        digest: desc.digest.clone(),
                        reason: format!("the content ended at {offset} of {} bytes", desc.size),
                    });
                }
                let end = offset + buf.len() as u64 - 1;
                let headers = [("Content-Type", "application/octet-stream".to_string()), ("Content-Range", format!("{offset}-{end}"))];
                let mut r = self.send("PATCH", &location, &headers, &buf)?;
                if r.status().as_u16() != 202 {
                    return Err(self.status_error(&location, &mut r));
                }
                if let Some(l) = header(&r, "location") {
                    location = self.absolute(l);
                }
                offset = end + 1;
            }
        }
        let sep = if location.contains('?') { '&' } else { '?' };
        let put = format!("{location}{sep}digest={}", encode(&desc.digest));
        let mut r = self.send("PUT", &put, &[("Content-Type", "application/octet-stream".into())], &final_body)?;
        if r.status().as_u16() != 201 {
            return Err(self.status_error(&put, &mut r));
        }
        Ok(())
    }
}

/// Percent-encodes a query value.
fn encode(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

impl Repository for Remote {
    fn describe(&self) -> String {
        format!("{}/{}", self.r.registry, self.r.repository)
    }

    fn blob_exists(&self, desc: &Descriptor) -> Result<bool, RegistryError> {
        let url = self.url(&format!("blobs/{}", desc.digest));
        let mut r = self.send("HEAD", &url, &[], &[])?;
        match r.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(self.status_error(&url, &mut r)),
        }
    }

    fn put_blob(&self, desc: &Descriptor, content: &Content) -> Result<(), RegistryError> {
        // A session the registry lost (restarted mid-upload) starts over once.
        match self.upload(desc, content) {
            Err(RegistryError::Status { status: 404 | 416, .. }) => self.upload(desc, content),
            other => other,
        }
    }

    fn fetch_blob(&self, desc: &Descriptor, sink: &mut dyn Write) -> Result<(), RegistryError> {
        if digest_hex(&desc.digest).is_none() {
            return Err(RegistryError::DigestMismatch { digest: desc.digest.clone(), reason: "not a sha256 digest Kiln can check".into() });
        }
        let url = self.url(&format!("blobs/{}", desc.digest));
        let mut r = self.send("GET", &url, &[], &[])?;
        match r.status().as_u16() {
            200 => {}
            404 => {
                return Err(RegistryError::NotFound { reference: format!("blob {} in {}", desc.digest, self.describe()) });
            }
            _ => return Err(self.status_error(&url, &mut r)),
        }
        let mut reader = r.body_mut().with_config().limit(desc.size.saturating_add(1)).reader();
        copy_verified(desc, &mut reader, sink)
    }

    fn put_manifest(&self, reference: &str, media_type: &str, bytes: &[u8]) -> Result<PutManifest, RegistryError> {
        let url = self.url(&format!("manifests/{reference}"));
        let mut r = self.send("PUT", &url, &[("Content-Type", media_type.into())], bytes)?;
        if r.status().as_u16() != 201 {
            return Err(self.status_error(&url, &mut r));
        }
        Ok(PutManifest { subject_accepted: header(&r, "oci-subject").is_some() })
    }

    fn get_manifest(&self, reference: &str) -> Result<Option<(String, Vec<u8>)>, RegistryError> {
        let url = self.url(&format!("manifests/{reference}"));
        let mut r = self.send("GET", &url, &[("Accept", ACCEPT.into())], &[])?;
        match r.status().as_u16() {
            200 => {}
            404 => return Ok(None),
            _ => return Err(self.status_error(&url, &mut r)),
        }
        let mt = header(&r, "content-type").unwrap_or("").split(';').next().unwrap_or("").trim().to_string();
        let claimed = header(&r, "docker-content-digest").map(String::from);
        let bytes = r.body_mut().with_config().limit(4 << 20).read_to_vec().map_err(|e| RegistryError::Transport {
            url: url.clone(),
            reason: e.to_string(),
            attempts: 1,
        })?;
        let actual = digest_of(&bytes);
        let expected = if digest_hex(reference).is_some() { Some(reference.to_string()) } else { claimed };
        if let Some(d) = expected
            && d != actual
        {
            return Err(RegistryError::DigestMismatch { digest: d, reason: format!("the manifest served for {reference} hashes to {actual}") });
        }
        let mt = if mt.is_empty() || mt == "application/octet-stream" || mt == "application/json" {
            serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get("mediaType")?.as_str().map(String::from))
                .unwrap_or_else(|| OCI_MANIFEST.into())
        } else {
            mt
        };
        Ok(Some((mt, bytes)))
    }

    fn referrers(&self, digest: &str) -> Result<Option<Vec<Descriptor>>, RegistryError> {
        let url = self.url(&format!("referrers/{digest}"));
        let mut r = self.send("GET", &url, &[("Accept", OCI_INDEX.into())], &[])?;
        match r.status().as_u16() {
            200 if header(&r, "content-type").is_some_and(|t| t.starts_with(OCI_INDEX)) => {}
            200 | 400 | 404 | 405 | 501 => return Ok(None),
            _ => return Err(self.status_error(&url, &mut r)),
        }
        let bytes = r.body_mut().with_config().limit(4 << 20).read_to_vec().map_err(|e| RegistryError::Transport {
            url: url.clone(),
            reason: e.to_string(),
            attempts: 1,
        })?;
        Ok(serde_json::from_slice::<ImageIndex>(&bytes).ok().map(|i| i.manifests))
    }
}
