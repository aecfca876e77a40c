//! The pass driver, the default pipeline and its named phases.

use crate::{
    ChooseConvLayout, Dce, FoldBatchNorm, FoldConstants, FuseActivation, FuseAttention, FuseElementwise, FuseGelu, FuseHardSwish,
    FuseLayerNorm, FuseLowp, FuseQdq, FuseQkv, InferShapes, Pass, PassError, RemoveIdentities, SimplifyLayout,
};
use kiln_ir::{Graph, IrError, Model, compact, verify};

/// Constant folding never writes an initializer of more elements than this (16 Mi).
pub const MAX_FOLD_ELEMENTS: usize = 16 << 20;

/// Rounds one pass may take at least; the cap grows with the graph (a pass rewrites at least
/// one node a round, so a converging pass stays far below it).
const MIN_ROUNDS: usize = 64;

/// One applied patch: which pass made it and what it did.
#[derive(Clone, Debug, PartialEq)]
pub struct AppliedPatch {
    pub pass: &'static str,
    pub description: String,
}

/// The passes of the default pipeline, in order. Each name is a phase a caller can stop after.
pub fn default_pipeline() -> Vec<Box<dyn Pass>> {
    vec![
        Box::new(InferShapes::new("infer-shapes")),
        Box::new(FuseQdq),
        Box::new(FuseLowp),
        Box::new(FoldConstants),
        Box::new(RemoveIdentities),
        Box::new(SimplifyLayout),
        Box::new(Dce::new("dce")),
        Box::new(InferShapes::new("refine-shapes")),
        Box::new(FoldBatchNorm),
        Box::new(FuseLayerNorm),
        Box::new(FuseGelu),
        Box::new(FuseHardSwish),
        Box::new(FuseAttention),
        Box::new(FuseActivation),
        Box::new(ChooseConvLayout),
        Box::new(FuseElementwise),
        Box::new(Dce::new("cleanup")),
        Box::new(FuseQkv),
    ]
}

/// The phase names of the default pipeline, in order.
pub fn phase_names() -> Vec<&'static str> {
    default_pipeline().iter().map(|p| p.name()).collect()
}

/// The default pipeline up to and including the phase `stop_after` (`--stop-after`).
pub fn pipeline_until(stop_after: &str) -> Result<Vec<Box<dyn Pass>>, PassError> {
    let mut passes = default_pipeline();
    let Some(i) = passes.iter().position(|p| p.name() == stop_after) else {
        return Err(PassError::UnknownPhase { name: stop_after.to_string(), known: phase_names().join(", ") });
    };
    passes.truncate(i + 1);
    Ok(passes)
}

/// The default pipeline after the phase `start_after`, with `fuse-qdq` and `fuse-lowp` first:
/// what runs on a graph the quantizer rewrote after `start_after`.
pub fn pipeline_after(start_after: &str) -> Result<Vec<Box<dyn Pass>>, PassError> {
    let mut passes = default_pipeline();
    let Some(i) = passes.iter().position(|p| p.name() == start_after) else {
        return Err(PassError::UnknownPhase { name: start_after.to_string(), known: phase_names().join(", ") });
    };
    let mut rest: Vec<Box<dyn Pass>> = vec![Box::new(FuseQdq), Box::new(FuseLowp)];
    rest.extend(passes.drain(i + 1..).filter(|p| !matches!(p.name(), "fuse-qdq" | "fuse-lowp")));
    Ok(rest)
}

/// Runs `passes` in order over the model's main graph. Each pass runs until it returns no
/// patch; every patch is applied, the graph compacted, verified (a pass that breaks the
/// graph is named) and its nodes put in topological order (ties keep their order), so dumps
/// read top-down. A pass still returning patches after its round cap is an error.
///
/// Before the passes: in models of IR version < 4, whose format required every initializer
/// to be listed as a graph input, such inputs are dropped from the inputs so the passes may
/// treat them as constants. (From IR 4 on, an initializer listed as an input is an
/// overridable default and passes leave it alone.) Afterwards the model's opsets gain
/// `kiln = 1` when a kiln op was written.
pub fn optimize(model: &mut Model, passes: &[Box<dyn Pass>]) -> Result<Vec<AppliedPatch>, PassError> {
    if model.ir_version < 4 {
        let g = &mut model.graph;
        let inits = &g.initializers;
        g.inputs.retain(|i| !inits.contains_key(i));
    }
    let mut log = Vec::new();
    for pass in passes {
        let cap = MIN_ROUNDS.max(4 * model.graph.nodes.len());
        let mut rounds = 0;
        while let Some(patch) = pass.run(&model.graph)? {
            if patch.is_empty() {
                break;
            }
            rounds += 1;
            let description = patch.description.clone();
            if rounds > cap {
                return Err(PassError::NoConvergence { pass: pass.name(), iterations: cap, last: description });
            }
            let broken = |source| PassError::Broken { pass: pass.name(), description: description.clone(), source };
            patch.apply(&mut model.graph).map_err(broken)?;
            compact(&mut model.graph);
            verify(model).map_err(broken)?;
            sort_nodes(&mut model.graph).map_err(broken)?;
            log.push(AppliedPatch { pass: pass.name(), description });
        }
    }
    if model.graph.nodes.iter().any(|n| n.domain == "kiln") {
        model.opsets.entry("kiln".to_string()).or_insert(1);
    }
    Ok(log)
}

/// Puts the nodes in a topological order that keeps the file order among independent nodes.
fn sort_nodes(g: &mut Graph) -> Result<(), IrError> {
    let order = g.topo_order()?;
    let mut nodes: Vec<Option<kiln_ir::Node>> = std::mem::take(&mut g.nodes).into_iter().map(Some).collect();
    g.nodes = order.iter().filter_map(|id| nodes.get_mut(id.0).and_then(Option::take)).collect();
    Ok(())
}
