//! Gate parsing and evaluation, as data.

mod common;
use kiln_report::gate::{Threshold, evaluate, parse};

#[test]
fn units_are_parsed_to_canonical_values() {
    let cases: &[(&str, f64)] = &[
        ("latency.p99<=20ms", 20.0),
        ("latency.p99<=1.5s", 1500.0),
        ("latency.p99<=500us", 0.5),
        ("accuracy.cosine>=99%", 0.99),
        ("accuracy.cosine>=0.99", 0.99),
        ("memory.rss<=64MiB", 64.0 * 1048576.0),
        ("size.bytes<2GB", 2e9),
        ("cost.per_million<=0.50", 0.5),
        ("cost.per_million<=$0.50", 0.5),
        ("energy.per_inference<=5mJ", 0.005),
        ("latency.throughput>=100/s", 100.0),
        (" latency.p50 <= 3 ms ", 3.0),
    ];
    for (text, want) in cases {
        let g = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        match g.threshold {
            Threshold::Absolute(v) => assert!((v - want).abs() < 1e-9 * want.abs().max(1.0), "{text}: {v} != {want}"),
            Threshold::Relative(_) => panic!("{text} is absolute"),
        }
    }
    assert_eq!(parse("latency.p50<=+5%").expect("relative").threshold, Threshold::Relative(0.05));
}

#[test]
fn bad_gates_say_why() {
    let cases: &[(&str, &str)] = &[
        ("latency.p999<=20ms", "known metrics: accuracy.cosine"),
        ("latency.p99<=20MiB", "unit 'MiB' does not fit"),
        ("latency.p99 20ms", "expected METRIC OP VALUE"),
        ("accuracy.cosine>=high", "not a number"),
    ];
    for (text, want) in cases {
        let e = parse(text).expect_err(text).to_string();
        assert!(e.contains(want), "{text}: {e}");
    }
}

#[test]
fn evaluation_passes_fails_and_names_the_numbers() {
    let r = common::fixture();
    let cases: &[(&str, bool, &str)] = &[
        ("accuracy.cosine>=0.99", true, "passed: accuracy.cosine = 0.999"),
        ("latency.p99<=20ms", true, "passed"),
        ("latency.p99<=10ms", false, "FAILED: latency.p99 = 11.500 ms, needs <= 10.000 ms"),
        ("cost.per_million<=0.50", true, "$0.2667"),
        ("cost.per_million<=0.10", false, "FAILED"),
        ("accuracy.task>=0.9", false, "not measured"),
        ("latency.p50<=+5%", false, "needs --baseline"),
    ];
    for (text, pass, want) in cases {
        let res = evaluate(&parse(text).expect("gate"), &r, None);
        assert_eq!(res.passed, *pass, "{text}: {}", res.message);
        assert!(res.message.contains(want), "{text}: {}", res.message);
    }
}

#[test]
fn regression_gates_compare_with_the_baseline() {
    let base = common::fixture();
    let mut slower = common::fixture();
    slower.latency[0].p50.value *= 1.10;
    let g = parse("latency.p50<=+5%").expect("gate");
    let res = evaluate(&g, &slower, Some(&base));
    assert!(!res.passed && res.message.contains("baseline 10.750 ms +5.0%"), "{}", res.message);
    assert!(evaluate(&g, &base, Some(&base)).passed);
}
