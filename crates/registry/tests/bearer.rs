//! The bearer-token flow against a minimal fake registry on 127.0.0.1: a 401 with a Bearer
//! challenge, a token fetched from the realm with basic credentials and the challenge's scope,
//! the request repeated with the token; a refused token is an authentication error.

use kiln_registry::{Credentials, Remote, RemoteOptions, Repository, parse_reference};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// Serves until dropped; records each request line with its Authorization header.
fn fake_registry(token: &'static str, accept: &'static str) -> (u16, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let log = Arc::new(Mutex::new(Vec::new()));
    let seen = log.clone();
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            let mut r = BufReader::new(c.try_clone().expect("clone"));
            let mut line = String::new();
            let mut auth = String::new();
            if r.read_line(&mut line).is_err() {
                continue;
            }
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).is_err() || h.trim().is_empty() {
                    break;
                }
                if let Some(v) = h.strip_prefix("Authorization: ").or_else(|| h.strip_prefix("authorization: ")) {
                    auth = v.trim().to_string();
                }
            }
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            seen.lock().expect("log").push(format!("{path} [{auth}]"));
            let mut c = c;
            let resp = if path.starts_with("/token") {
                let body = format!("{{\"token\":\"{token}\"}}");
                format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
            } else if auth == format!("Bearer {accept}") {
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string()
            } else {
                format!(
                    "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"fake\",scope=\"repository:team/m:pull\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )
            };
            let _ = c.write_all(resp.as_bytes());
        }
    });
    (port, log)
}

fn remote(port: u16, credentials: Credentials) -> Remote {
    let kiln_registry::Reference::Remote(r) = parse_reference(&format!("127.0.0.1:{port}/team/m:1.0.0")).expect("ref") else { panic!("not remote") };
    Remote::new(&r, RemoteOptions { insecure: true, credentials, retries: 0, ..Default::default() })
}

#[test]
fn a_bearer_challenge_is_answered_with_a_token_from_the_realm() {
    let (port, log) = fake_registry("tok-123", "tok-123");
    let r = remote(port, Credentials::Basic { username: "u".into(), password: "p".into() });
    assert_eq!(r.get_manifest("1.0.0").expect("answered"), None, "the fake registry has no manifests");
    let log = log.lock().expect("log").clone();
    assert_eq!(log.len(), 3, "{log:?}");
    assert!(log[0].starts_with("/v2/team/m/manifests/1.0.0 []"), "{log:?}");
    assert!(log[1].starts_with("/token?service=fake&scope=repository%3Ateam%2Fm%3Apull [Basic dTpw]"), "{log:?}");
    assert!(log[2].ends_with("[Bearer tok-123]"), "{log:?}");
}

#[test]
fn a_refused_token_is_an_authentication_error() {
    // The realm hands out a token the registry then refuses: Kiln gives up, naming the registry.
    let (port, log) = fake_registry_refusing();
    let e = remote(port, Credentials::Anonymous).get_manifest("1.0.0").expect_err("refused").to_string();
    assert!(e.contains(&format!("127.0.0.1:{port}: authentication failed")) && e.contains("--password-stdin"), "{e}");
    assert!(log.lock().expect("log").len() <= 6, "it must not loop");
}

/// Like [`fake_registry`], but the token the realm issues is never accepted.
fn fake_registry_refusing() -> (u16, Arc<Mutex<Vec<String>>>) {
    fake_registry("issued", "something-else")
}
