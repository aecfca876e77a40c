use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

#[derive(Clone, Debug, PartialEq)]
pub enum Status {
    Pass,
    /// Ran, but an output differs or the run failed.
    Fail(String),
    /// Imported, but these ops have no kernel in the executor.
    Unsupported(Vec<String>),
    /// Could not be imported or read.
    Error(String),
    /// Not run on this target, for the reason given in its skip list.
    Skipped(String),
}

#[derive(Clone, Debug)]
pub struct Outcome {
    pub case: String,
    pub suite: String,
    pub op: String,
    pub status: Status,
    pub seconds: f64,
}

impl Outcome {
    pub fn key(&self) -> String {
        format!("{}/{}", self.suite, self.case)
    }
}

/// All outcomes of a run, with the per-op table and the expectation check.
pub struct Report {
    pub target: String,
    pub outcomes: Vec<Outcome>,
}

impl Report {
    pub fn passed(&self) -> usize {
        self.outcomes.iter().filter(|o| o.status == Status::Pass).count()
    }

    pub fn count(&self, f: impl Fn(&Status) -> bool) -> usize {
        self.outcomes.iter().filter(|o| f(&o.status)).count()
    }

    /// One line per case key that passed, sorted: the expectation file format.
    pub fn passing_keys(&self) -> BTreeSet<String> {
        self.outcomes.iter().filter(|o| o.status == Status::Pass).map(Outcome::key).collect()
    }

    /// Expected-passing cases (from an expectation file's lines) that did not pass.
    pub fn regressions(&self, expected: &BTreeSet<String>) -> Vec<&Outcome> {
        self.outcomes.iter().filter(|o| expected.contains(&o.key()) && o.status != Status::Pass).collect()
    }

    /// Markdown: totals, then a per-op table (passed / failed / unsupported / error), then
    /// every case that did not pass with its reason.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let total = self.outcomes.len();
        let _ = writeln!(s, "# Conformance: {}\n", self.target);
        let _ = writeln!(
            s,
            "{} cases: {} passed, {} failed, {} unsupported, {} errors, {} skipped\n",
            total,
            self.passed(),
            self.count(|s| matches!(s, Status::Fail(_))),
            self.count(|s| matches!(s, Status::Unsupported(_))),
            self.count(|s| matches!(s, Status::Error(_))),
            self.count(|s| matches!(s, Status::Skipped(_)))
        );
        let mut per_op: BTreeMap<(&str, &str), [usize; 5]> = BTreeMap::new();
        for o in &self.outcomes {
            let e = per_op.entry((o.suite.as_str(), o.op.as_str())).or_default();
            let i = match o.status {
                Status::Pass => 0,
                Status::Fail(_) => 1,
                Status::Unsupported(_) => 2,
                Status::Error(_) => 3,
                Status::Skipped(_) => 4,
            };
            e[i] += 1;
        }
        let _ = writeln!(s, "| suite | op | passed | failed | unsupported | error | skipped |\n|---|---|---:|---:|---:|---:|---:|");
        for ((suite, op), c) in &per_op {
            let _ = writeln!(s, "| {suite} | {op} | {} | {} | {} | {} | {} |", c[0], c[1], c[2], c[3], c[4]);
        }
        let _ = writeln!(s, "\n## Cases that did not pass\n");
        for o in &self.outcomes {
            let why = match &o.status {
                Status::Pass => continue,
                Status::Fail(w) => format!("failed: {w}"),
                Status::Unsupported(ops) => format!("unsupported: {}", ops.join(", ")),
                Status::Error(w) => format!("error: {w}"),
                Status::Skipped(w) => format!("skipped: {w}"),
            };
            let why: String = why.chars().take(300).collect();
            let _ = writeln!(s, "- `{}`: {}", o.key(), why.replace('\n', " "));
        }
        s
    }
}
