//! Renderings of a fixed report, as insta snapshots; and the JSON schema round trip.

mod common;
use kiln_report::{Report, gate, render};

fn gated() -> Report {
    let mut r = common::fixture();
    for g in ["accuracy.cosine>=0.99", "latency.p99<=10ms"] {
        let parsed = gate::parse(g).expect("gate");
        let res = gate::evaluate(&parsed, &r, None);
        r.gates.push(res);
    }
    r
}

#[test]
fn json_round_trips_under_its_schema() {
    let r = gated();
    let text = render::json(&r);
    assert_eq!(Report::from_json(text.as_bytes()).expect("parse"), r);
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("json");
    v["schema_version"] = 99.into();
    let e = Report::from_json(v.to_string().as_bytes()).expect_err("newer schema");
    assert!(e.to_string().contains("newer"), "{e}");
    insta::assert_snapshot!("json", text);
}

#[test]
fn markdown() {
    insta::assert_snapshot!("markdown", render::markdown(&gated()));
}

#[test]
fn junit() {
    let x = render::junit(&gated());
    assert!(x.contains("<failure message=\"FAILED: latency.p99"), "{x}");
    insta::assert_snapshot!("junit", x);
}

#[test]
fn html_is_self_contained() {
    let h = render::html(&gated());
    for banned in ["http://", "https://", "<script", "<link"] {
        let stripped = h.replace("http://www.w3.org/2000/svg", "");
        assert!(!stripped.contains(banned), "HTML must not reference {banned}");
    }
    assert!(h.contains("id=\"latency-chart\"") && h.contains("id=\"precision-chart\""));
    insta::assert_snapshot!("html", h);
}
