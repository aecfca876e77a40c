//! WGSL kernels one op at a time (the cases in `wgpu_cases`): each compiled for the wgpu
//! target (tune off), checked to put the step on the expected wgpu kernel (a silent fallback
//! to the CPU fails the case) and to match the reference executor within 1e-3 relative.
//! Without an adapter the test says skipped, and fails when KILN_REQUIRE_GPU_ADAPTER=1 (CI
//! installs lavapipe).

mod wgpu_cases;
mod wgpu_common;

use kiln_conformance::single_op::check_close;
use kiln_ir::Attr;
use kiln_target::{CompileOptions, Target, TuneMode};
use wgpu_cases::{cases, check_every_variant, off, run_case};

#[test]
fn wgsl_kernels_match_the_reference() {
    if wgpu_common::adapter_or_skip().is_none() {
        return;
    }
    let mut failures = Vec::new();
    let all = cases();
    for c in &all {
        match run_case(c, None, &off()) {
            Ok(_) => println!("{}: ok ({})", c.name, c.kernel),
            Err(e) => failures.push(format!("{}: {e}", c.name)),
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n  {}", failures.len(), all.len(), failures.join("\n  "));
}

/// The tuner may pick any variant the adapter allows: each must compute the same thing.
#[test]
fn every_variant_matches_the_reference() {
    if wgpu_common::adapter_or_skip().is_none() {
        return;
    }
    check_every_variant(&off());
}

/// Full tuning measures the wgpu steps' variants on the adapter (default first) and records
/// them under the adapter's fingerprint; a second compile replays the record.
#[test]
fn tuning_measures_on_the_adapter_and_replays() {
    if wgpu_common::adapter_or_skip().is_none() {
        return;
    }
    let all = cases();
    let c = all.iter().find(|c| c.name == "linear_tiles").expect("case");
    let dir = tempfile::tempdir().expect("tempdir");
    let full = CompileOptions { tune: TuneMode::Full, cache_dir: Some(dir.path().to_path_buf()), ..CompileOptions::default() };
    let (decisions, _) = run_case(c, None, &full).unwrap_or_else(|e| panic!("{e}"));
    let d = decisions.iter().find(|d| d.key.kernel == "wgpu.matmul").unwrap_or_else(|| panic!("no wgpu.matmul decision in {decisions:?}"));
    println!("tuned {}: {} ({}; default {:?} ns, chosen {:?} ns)", d.key.problem, d.chosen, d.source, d.default_ns, d.chosen_ns);
    assert_eq!(d.source, "measured");
    assert_eq!(d.default_variant, kiln_target_wgpu::kernel_variants("wgpu.matmul")[0]);
    assert!(d.default_ns.is_some());
    let fp = kiln_target_wgpu::WgpuTarget.id().fingerprint;
    assert!(fp.starts_with("wgpu/"), "fingerprint {fp}");
    let records = std::fs::read_to_string(dir.path().join("tune-records.json")).expect("records written");
    assert!(records.contains(&fp) && records.contains("wgpu.matmul"), "no wgpu.matmul record under {fp}");
    let cached = CompileOptions { tune: TuneMode::Cache, ..full };
    let (again, _) = run_case(c, None, &cached).unwrap_or_else(|e| panic!("{e}"));
    let d2 = again.iter().find(|d| d.key.kernel == "wgpu.matmul").expect("decision");
    assert_eq!((d2.source, d2.chosen.as_str()), ("cache", d.chosen.as_str()));
}

/// A run of a `Net`: (op, kernel) per plan step, the placement, (got, want) per output.
type Outcome = (Vec<(String, String)>, (usize, usize, usize), Vec<(kiln_tensor::Tensor, kiln_tensor::Tensor)>);

/// A small graph for the multi-node tests: an f32 input `x`, int64 constants, opset-17 nodes.
struct Net {
    g: kiln_ir::Graph,
    x: kiln_ir::ValueId,
    shape: Vec<usize>,
}

impl Net {
    fn new(shape: &[usize]) -> Net {
        let mut g = kiln_ir::Graph::new("g");
        let x = g.add_value("x", Some(kiln_tensor::DType::F32), Some(kiln_tensor::Shape::known(shape)));
        g.inputs.push(x);
        Net { g, x, shape: shape.to_vec() }
    }

    /// Makes x's first dimension symbolic.
    fn symbolic_batch(&mut self) {
        if let Some(kiln_tensor::Shape(dims)) = self.g.values[self.x.0].shape.as_mut() {
            dims[0] = kiln_tensor::Dim::Sym("n".into());
        }
    }

    fn constant(&mut self, v: &[i64]) -> kiln_ir::ValueId {
        let id = self.g.add_value(format!("c{}", self.g.initializers.len()), None, None);
        self.g.initializers.insert(id, kiln_tensor::Tensor::from_vec(vec![v.len()], v.to_vec()).expect("constant"));
        id
    }

    fn node(&mut self, op: &str, inputs: &[kiln_ir::ValueId], outputs: usize, attrs: Vec<(&str, Attr)>) -> Vec<kiln_ir::ValueId> {
        let n = self.g.nodes.len();
        let outs: Vec<_> = (0..outputs).map(|j| self.g.add_value(format!("n{n}_{j}"), None, None)).collect();
        self.g.nodes.push(kiln_ir::Node {
            name: format!("n{n}"),
            op_type: op.into(),
            domain: String::new(),
            opset: 17,
            inputs: inputs.iter().map(|&v| Some(v)).collect(),
            outputs: outs.iter().map(|&o| Some(o)).collect(),
            attrs: attrs.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            unsupported: None,
        });
        outs
    }

    /// Compiles for wgpu (tune off) with `outputs` as the graph's outputs, runs seeded `x`
    /// through the plan and the reference: the plan's (op, kernel) per step, its placement,
    /// and (got, want) per output.
    fn run(mut self, outputs: &[kiln_ir::ValueId]) -> Outcome {
        use kiln_reference::Value;
        self.g.outputs.extend(outputs);
        let model = kiln_ir::Model { graph: self.g, ir_version: 8, opsets: [(String::new(), 17)].into(), ..kiln_ir::Model::default() };
        let n = self.shape.iter().product();
        let feed = kiln_tensor::Tensor::from_vec(self.shape, kiln_conformance::single_op::values(n, 1)).expect("x");
        let want = kiln_reference::run(&model, vec![("x".into(), Value::Tensor(feed.clone()))]).expect("reference");
        let target = kiln_target_wgpu::WgpuTarget;
        let compiled = kiln_pipeline::compile_model(model, &target, &off(), None).expect("compile");
        let plan = compiled.plan.expect("plan");
        let kernels = plan.steps.iter().map(|s| (s.op.clone(), s.kernel.clone())).collect();
        let placement = kiln_target_wgpu::placement(&plan);
        let mut exe = target.load(&plan, compiled.weights).expect("load");
        let got = exe.run(vec![("x".into(), feed)]).expect("run");
        assert_eq!(got.len(), want.len());
        let pairs = got
            .into_iter()
            .zip(want)
            .map(|((_, g), (name, w))| match w {
                Value::Tensor(w) => (g, w),
                _ => panic!("reference output {name} is not a tensor"),
            })
            .collect();
        (kernels, placement, pairs)
    }
}

fn check_outputs(pairs: &[(kiln_tensor::Tensor, kiln_tensor::Tensor)]) {
    for (i, (got, want)) in pairs.iter().enumerate() {
        assert_eq!(got.shape(), want.shape(), "output {i}");
        check_close(got, want, 1e-3, "wgpu").unwrap_or_else(|e| panic!("output {i}: {e}"));
    }
}

/// Reshape / Unsqueeze / Squeeze / Flatten between wgpu steps relabel the device value (no
/// transfer, no dispatch) and agree with the reference; one on a host value stays on the CPU.
#[test]
fn reshapes_between_wgpu_steps_stay_on_the_device() {
    if wgpu_common::adapter_or_skip().is_none() {
        return;
    }
    let mut net = Net::new(&[2, 3, 4]);
    let (shape, shape2, one, one2) = (net.constant(&[0, -1]), net.constant(&[4, -1]), net.constant(&[1]), net.constant(&[-2]));
    // Reshape on the host input stays on the CPU; the rest follow a Softmax on the adapter.
    let mut v = net.node("Reshape", &[net.x, shape], 1, vec![])[0];
    v = net.node("Softmax", &[v], 1, vec![])[0];
    v = net.node("Reshape", &[v, shape2], 1, vec![])[0];
    v = net.node("Tanh", &[v], 1, vec![])[0];
    v = net.node("Unsqueeze", &[v, one], 1, vec![])[0];
    v = net.node("Sigmoid", &[v], 1, vec![])[0];
    v = net.node("Squeeze", &[v, one2], 1, vec![])[0];
    v = net.node("Tanh", &[v], 1, vec![])[0];
    v = net.node("Flatten", &[v], 1, vec![("axis", Attr::Int(0))])[0];
    let (kernels, placement, pairs) = net.run(&[v]);
    println!("{kernels:?}");
    let relabelled = kernels.iter().filter(|(_, k)| k == "wgpu.reshape").count();
    assert_eq!(relabelled, 4, "Reshape, Unsqueeze, Squeeze, Flatten after the Softmax on the adapter: {kernels:?}");
    assert_eq!(placement, (8, 1, 2), "one upload, one readback: {kernels:?}");
    check_outputs(&pairs);
    assert_eq!(pairs[0].0.shape(), &[1, 24]);
}

/// Split on the adapter: every output (sizes from a constant, or equal parts) matches the
/// reference, and the parts stay on the device for the wgpu steps that read them.
#[test]
fn split_outputs_match_the_reference() {
    if wgpu_common::adapter_or_skip().is_none() {
        return;
    }
    let mut net = Net::new(&[2, 6, 5]);
    let sizes = net.constant(&[1, 3, 2]);
    let s = net.node("Sigmoid", &[net.x], 1, vec![])[0];
    let given = net.node("Split", &[s, sizes], 3, vec![("axis", Attr::Int(1))]);
    let equal = net.node("Split", &[given[1]], 3, vec![("axis", Attr::Int(-2))]);
    let t = net.node("Tanh", &[equal[2]], 1, vec![])[0];
    let (kernels, placement, pairs) = net.run(&[given[0], given[2], equal[0], equal[1], t]);
    assert_eq!(kernels.iter().filter(|(_, k)| k == "wgpu.split").count(), 2, "{kernels:?}");
    assert_eq!(placement, (4, 0, 6), "one upload, five readbacks: {kernels:?}");
    check_outputs(&pairs);
}

/// Shape and Size of a device value come from its device tensor: no readback of the data.
#[test]
fn shape_of_a_device_value_reads_nothing_back() {
    if wgpu_common::adapter_or_skip().is_none() {
        return;
    }
    let mut net = Net::new(&[2, 3, 4]);
    // A symbolic batch, so the optimizer cannot fold the shape into a constant.
    net.symbolic_batch();
    let s = net.node("Sigmoid", &[net.x], 1, vec![])[0];
    let shape = net.node("Shape", &[s], 1, vec![("start", Attr::Int(-2))])[0];
    let size = net.node("Size", &[s], 1, vec![])[0];
    let t = net.node("Tanh", &[s], 1, vec![])[0];
    let (kernels, placement, pairs) = net.run(&[shape, size, t]);
    assert_eq!(kernels.iter().filter(|(_, k)| k == "wgpu.shape").count(), 2, "{kernels:?}");
    assert_eq!(placement, (4, 0, 2), "one upload, one readback (Tanh's): {kernels:?}");
    for (got, want) in &pairs[..2] {
        assert_eq!((got.shape(), got.to_i64_vec().ok()), (want.shape(), want.to_i64_vec().ok()));
    }
    check_outputs(&pairs[2..]);
}

/// A Reshape whose target shape is computed on the host (Shape of the input there) relabels
/// the device value with it: no readback of the data, no upload of the shape.
#[test]
fn reshape_to_a_shape_computed_on_the_host() {
    if wgpu_common::adapter_or_skip().is_none() {
        return;
    }
    let mut net = Net::new(&[2, 3, 4]);
    // A symbolic batch, so the optimizer cannot fold the shape into a constant.
    net.symbolic_batch();
    let flat = net.constant(&[0, -1]);
    let shape = net.node("Shape", &[net.x], 1, vec![])[0];
    let mut v = net.node("Softmax", &[net.x], 1, vec![])[0];
    v = net.node("Reshape", &[v, flat], 1, vec![])[0];
    v = net.node("Sigmoid", &[v], 1, vec![])[0];
    v = net.node("Reshape", &[v, shape], 1, vec![])[0];
    v = net.node("Softmax", &[v], 1, vec![])[0];
    let (kernels, placement, pairs) = net.run(&[v]);
    println!("{kernels:?}");
    assert_eq!(kernels.iter().filter(|(_, k)| k == "wgpu.reshape").count(), 2, "{kernels:?}");
    assert_eq!(placement.2, 2, "one upload, one readback: {kernels:?}");
    check_outputs(&pairs);
}
