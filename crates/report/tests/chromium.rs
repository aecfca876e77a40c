//! The HTML report in a real browser: headless Chromium renders it, the charts must be in the
//! DOM, and a screenshot must not be blank. A missing Chromium fails with how to install it.

mod common;
use std::process::Command;

fn chromium() -> String {
    for c in ["chromium", "chromium-browser", "google-chrome"] {
        if Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success()) {
            return c.to_string();
        }
    }
    panic!("headless Chromium is needed to check the HTML report: install it with `apt-get install -y chromium` (ci/test.sh does)");
}

fn headless(bin: &str, extra: &[&str], url: &str) -> std::process::Output {
    let profile = tempfile::tempdir().expect("profile dir");
    let mut args = vec!["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions"];
    let user_dir = format!("--user-data-dir={}", profile.path().display());
    args.push(&user_dir);
    args.extend_from_slice(extra);
    args.push(url);
    Command::new(bin).args(&args).output().expect("run chromium")
}

#[test]
fn html_report_renders_with_its_charts_in_chromium() {
    let bin = chromium();
    let mut r = common::fixture();
    r.gates.push(kiln_report::gate::evaluate(&kiln_report::gate::parse("latency.p99<=20ms").expect("gate"), &r, None));
    let dir = tempfile::tempdir().expect("tmp");
    let page = dir.path().join("report.html");
    std::fs::write(&page, kiln_report::render::html(&r)).expect("write");
    let url = format!("file://{}", page.display());

    let out = headless(&bin, &["--dump-dom"], &url);
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    for id in ["latency-chart", "precision-chart", "output-error-chart"] {
        assert!(dom.contains(&format!("id=\"{id}\"")), "chart {id} missing from the rendered DOM:\n{dom}");
    }
    assert!(dom.matches("class=\"bar\"").count() >= 20, "bars missing from the charts");
    assert!(dom.contains("All 1 gates passed"), "verdict missing");

    let shot = dir.path().join("shot.png");
    let arg = format!("--screenshot={}", shot.display());
    let out = headless(&bin, &[&arg, "--window-size=1000,1400", "--hide-scrollbars"], &url);
    assert!(out.status.success() && shot.exists(), "no screenshot: {}", String::from_utf8_lossy(&out.stderr));
    let png = std::fs::read(&shot).expect("png");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    // A blank white page compresses to a few KiB; charts and text make it larger.
    assert!(png.len() > 20_000, "screenshot looks blank ({} bytes)", png.len());
}
