//! Dead-code removal: nodes whose outputs nothing reads (transitively) and initializers no
//! live node reads. Graph inputs and outputs are the interface and stay.

use crate::util::View;
use crate::{Pass, PassError};
use kiln_ir::{Graph, GraphPatch, NodeId, ValueId};
use std::collections::HashSet;

/// The pass; its name lets a pipeline run it more than once ("dce", "cleanup").
pub struct Dce {
    name: &'static str,
}

impl Dce {
    pub fn new(name: &'static str) -> Dce {
        Dce { name }
    }
}

impl Default for Dce {
    fn default() -> Self {
        Dce::new("dce")
    }
}

impl Pass for Dce {
    fn name(&self) -> &'static str {
        self.name
    }

    fn run(&self, g: &Graph) -> Result<Option<GraphPatch>, PassError> {
        let view = View::new(g);
        let mut live_nodes = vec![false; g.nodes.len()];
        let mut live_values: HashSet<ValueId> = HashSet::new();
        let mut stack: Vec<ValueId> = g.outputs.clone();
        while let Some(v) = stack.pop() {
            if !live_values.insert(v) {
                continue;
            }
            if let Some((p, n)) = view.producer(v)
                && !live_nodes[p.0]
            {
                live_nodes[p.0] = true;
                stack.extend(n.inputs.iter().flatten());
                stack.extend(kiln_ir::subgraph_reads(n).iter().filter_map(|name| g.value_by_name(name)));
            }
        }
        let mut patch = GraphPatch::new(g, "");
        let dead: Vec<usize> = (0..g.nodes.len()).filter(|&i| !live_nodes[i]).collect();
        for &i in &dead {
            patch.remove_node(NodeId(i));
        }
        let mut unused = 0;
        for v in g.initializers.keys() {
            if !live_values.contains(v) && !g.inputs.contains(v) {
                patch.remove_initializer(*v);
                unused += 1;
            }
        }
        if dead.is_empty() && unused == 0 {
            return Ok(None);
        }
        patch.description = format!("remove {} dead nodes and {unused} unused initializers", dead.len());
        Ok(Some(patch))
    }
}
