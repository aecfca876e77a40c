//! Convolution timings: every applicable algorithm, NCHW and NHWC, 1 and 2 threads.

use std::time::Duration;

use kiln_target_cpu::kernels::{Activation, Conv2dSpec, ConvLayout, ConvWeights, conv_candidates, conv2d};

use crate::timing::{Case, interleaved};

fn data(n: usize) -> Vec<f32> {
    (0..n).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect()
}

pub fn run(max_threads: usize, quick: bool) {
    let shapes: Vec<(&str, Conv2dSpec)> = vec![
        ("resnet stem 7x7/2 3->64 224", Conv2dSpec::new(1, 3, [224, 224], 64, [7, 7]).stride([2, 2]).pads([3; 4])),
        ("resnet 3x3 64->64 56", Conv2dSpec::new(1, 64, [56, 56], 64, [3, 3]).pads([1; 4])),
        ("resnet 1x1 256->64 56", Conv2dSpec::new(1, 256, [56, 56], 64, [1, 1])),
        ("resnet 3x3/2 128->128 56", Conv2dSpec::new(1, 128, [56, 56], 128, [3, 3]).stride([2, 2]).pads([1; 4])),
        ("mbv2 pw 1x1 24->144 56", Conv2dSpec::new(1, 24, [56, 56], 144, [1, 1])),
        ("mbv2 dw 3x3 144 56", Conv2dSpec::new(1, 144, [56, 56], 144, [3, 3]).pads([1; 4]).groups(144)),
        ("mbv2 dw 3x3/2 96 112", Conv2dSpec::new(1, 96, [112, 112], 96, [3, 3]).stride([2, 2]).pads([1; 4]).groups(96)),
        ("grouped 3x3 g=32 128->128 28", Conv2dSpec::new(1, 128, [28, 28], 128, [3, 3]).pads([1; 4]).groups(32)),
    ];
    let budget = Duration::from_millis(if quick { 300 } else { 1500 });
    println!(
        "\n## Conv2d f32, batch 1, bias + relu fused (ms median / best of interleaved samples; GFLOP/s from the median, padding taps counted)"
    );
    println!("| conv | layout | algo | tile rows | threads | median ms | best ms | GFLOP/s |");
    println!("|---|---|---|---|---|---|---|---|");
    for (name, spec) in shapes {
        // Synthetic data: the same buffer serves as NCHW and NHWC input (timing only).
        let x_nchw = data(spec.input_len().expect("shape"));
        let w = data(spec.weight_len().expect("shape"));
        let bias = data(spec.out_channels);
        let mut runs = Vec::new();
        for layout in [ConvLayout::Nchw, ConvLayout::Nhwc] {
            let cw = ConvWeights::new(&spec, layout, &w).expect("weights");
            let mut cands = conv_candidates(&spec, layout, max_threads);
            if quick {
                cands.truncate(4);
            }
            for p in cands {
                runs.push((layout, p, cw.clone()));
            }
        }
        let mut outs: Vec<Vec<f32>> = runs.iter().map(|_| vec![0.0f32; spec.output_len().expect("shape")]).collect();
        let mut cases: Vec<Case<'_>> = runs
            .iter()
            .zip(outs.iter_mut())
            .map(|((_, p, cw), y)| {
                let (x, bias) = (&x_nchw, &bias);
                Box::new(move || conv2d(x, cw, Some(bias), Activation::Relu, y, p).expect("conv")) as Case<'_>
            })
            .collect();
        let stats = interleaved(budget, 5, &mut cases);
        for ((layout, p, _), st) in runs.iter().zip(stats) {
            println!(
                "| {name} | {layout:?} | {:?} | {} | {} | {:.3} | {:.3} | {:.1} |",
                p.algo,
                p.tile_rows,
                p.gemm.threads,
                st.median * 1e3,
                st.min * 1e3,
                spec.flops() / st.median / 1e9
            );
        }
    }
}
