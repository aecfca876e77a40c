//! A real OCI registry for tests: Debian's `docker-registry` (the CNCF distribution registry)
//! on 127.0.0.1 with its own config, storage in a temp folder and htpasswd basic auth, stopped
//! when dropped. Missing prerequisites fail with the command that installs them.

#![allow(dead_code)]

pub mod kiln;
pub mod proxy;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const USER: &str = "kiln";
pub const PASSWORD: &str = "s3cret-pass";
const INSTALL: &str = "install it with `sudo apt-get install -y docker-registry apache2-utils` (ci/test.sh does)";

fn need(tool: &str) {
    let found = std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()));
    assert!(found, "`{tool}` is missing: {INSTALL}");
}

pub struct Registry {
    child: Option<Child>,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Registry {
    pub fn start() -> Registry {
        need("docker-registry");
        need("htpasswd");
        let dir = tempfile::tempdir().expect("tmp");
        let out = Command::new("htpasswd").args(["-Bbn", USER, PASSWORD]).output().expect("htpasswd runs");
        assert!(out.status.success(), "htpasswd failed: {}", String::from_utf8_lossy(&out.stderr));
        std::fs::write(dir.path().join("htpasswd"), &out.stdout).expect("write htpasswd");
        let port = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\nauth:\n  htpasswd:\n    realm: kiln-test\n    path: {}\n",
            dir.path().join("data").display(),
            dir.path().join("htpasswd").display()
        );
        std::fs::write(dir.path().join("config.yml"), config).expect("write config");
        let mut r = Registry { child: None, port, dir };
        r.restart();
        r
    }

    /// Starts (again) on the same port and storage.
    pub fn restart(&mut self) {
        self.kill();
        let log = std::fs::File::create(self.dir.path().join("registry.log")).expect("log");
        let child = Command::new("docker-registry")
            .args(["serve", &self.dir.path().join("config.yml").display().to_string()])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start docker-registry ({e}): {INSTALL}"));
        self.child = Some(child);
        let t = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(t.elapsed() < Duration::from_secs(20), "docker-registry did not listen on {}: {}", self.port, self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("data/docker/registry/v2")
    }

    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
        self.storage().join("blobs/sha256").join(&hex[..2]).join(hex).join("data")
    }

    /// The JSON a tag points to, read from the registry's storage.
    pub fn tagged_json(&self, repo: &str, tag: &str) -> serde_json::Value {
        let link = self.storage().join("repositories").join(repo).join("_manifests/tags").join(tag).join("current/link");
        let digest = std::fs::read_to_string(&link).unwrap_or_else(|e| panic!("{}: {e}", link.display()));
        self.blob_json(digest.trim())
    }

    pub fn blob_json(&self, digest: &str) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.blob_file(digest)).expect("blob")).expect("json blob")
    }

    pub fn has_tag(&self, repo: &str, tag: &str) -> bool {
        self.storage().join("repositories").join(repo).join("_manifests/tags").join(tag).exists()
    }

    /// A docker config.json folder holding this registry's credentials (for $DOCKER_CONFIG).
    pub fn docker_config(&self, at: &Path) -> PathBuf {
        docker_config(&[self.host()], at)
    }
}

/// A docker config.json folder with the test credentials for each host.
pub fn docker_config(hosts: &[String], at: &Path) -> PathBuf {
    std::fs::create_dir_all(at).expect("mkdir");
    let auths: Vec<String> = hosts.iter().map(|h| format!("\"{h}\":{{\"username\":\"{USER}\",\"password\":\"{PASSWORD}\"}}")).collect();
    std::fs::write(at.join("config.json"), format!("{{\"auths\":{{{}}}}}", auths.join(","))).expect("config.json");
    at.to_path_buf()
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill();
    }
}
