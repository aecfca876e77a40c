//! Pushes that go wrong halfway: the registry killed during a chunked blob upload leaves no tag
//! and a retry after a restart completes; dropped connections and 503s are retried through.

mod registry;

use registry::kiln::{Kiln, compile, s, same_artifact};
use registry::proxy::{Mode, Proxy};
use registry::{Registry, docker_config};

#[test]
fn registry_killed_mid_push_leaves_no_tag_and_a_retry_completes() {
    let mut reg = Registry::start();
    let proxy = Proxy::start(reg.port, Mode::KillOnPatch(reg.pid().expect("pid")));
    let t = tempfile::tempdir().expect("tmp");
    let dc = docker_config(&[reg.host(), proxy.host()], &t.path().join("docker"));
    let k = Kiln::new(t.path()).env("DOCKER_CONFIG", s(&dc));
    let art = t.path().join("a.kiln");
    compile(&k, &art, "1.0.0", &[]);
    let repo = format!("{}/kill/rapid", proxy.host());
    // Weights (6 MiB) go up in 1 MiB chunks; the registry dies at the first chunk.
    let e = k.fails(&["publish", s(&art), &repo, "--insecure", "--chunk-size", "1MiB", "--retries", "2"]);
    assert_eq!(proxy.mode(), Mode::Pass, "the push never reached a chunk upload: {e}");
    assert!(e.contains("cannot publish") && e.contains("attempt"), "{e}");
    reg.restart();
    assert!(!reg.has_tag("kill/rapid", "1.0.0"), "an interrupted push left the tag 1.0.0");
    let e = k.fails(&["pull", &format!("{repo}:1.0.0"), "-o", s(&t.path().join("none")), "--insecure"]);
    assert!(e.contains("not found"), "{e}");
    // The same command again completes, and the pull matches byte for byte.
    k.ok(&["publish", s(&art), &repo, "--insecure", "--chunk-size", "1MiB", "--retries", "2"]);
    assert!(reg.has_tag("kill/rapid", "1.0.0"));
    let back = t.path().join("back");
    k.ok(&["pull", &format!("{repo}:1.0.0"), "-o", s(&back), "--insecure"]);
    same_artifact(&art, &back);
}

#[test]
fn dropped_connections_and_503s_are_retried_through() {
    let reg = Registry::start();
    let proxy = Proxy::start(reg.port, Mode::DropOnPatch(2));
    let t = tempfile::tempdir().expect("tmp");
    let dc = docker_config(&[proxy.host()], &t.path().join("docker"));
    let k = Kiln::new(t.path()).env("DOCKER_CONFIG", s(&dc));
    let art = t.path().join("a.kiln");
    compile(&k, &art, "1.0.0", &[]);
    let repo = format!("{}/flaky/rapid", proxy.host());
    k.ok(&["publish", s(&art), &repo, "--insecure", "--chunk-size", "1MiB", "--retries", "4"]);
    assert_eq!(proxy.mode(), Mode::Pass, "no PATCH connection was dropped");
    proxy.set(Mode::Fail503(3));
    let back = t.path().join("back");
    k.ok(&["pull", &format!("{repo}:1.0.0"), "-o", s(&back), "--insecure", "--retries", "4"]);
    assert_eq!(proxy.mode(), Mode::Pass, "no 503 was served");
    same_artifact(&art, &back);
    // Without retries the same 503 is an error naming the status.
    proxy.set(Mode::Fail503(1));
    let e = k.fails(&["pull", &format!("{repo}:1.0.0"), "-o", s(&t.path().join("x")), "--insecure", "--retries", "0"]);
    assert!(e.contains("503"), "{e}");
}
