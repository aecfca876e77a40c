//! The GEMM microbenchmark on whatever adapter is here: every variant runs and gives a
//! positive rate. Without an adapter: skipped (failing under KILN_REQUIRE_GPU_ADAPTER=1).

#[test]
fn gemm_microbenchmark_runs_every_variant() {
    let n = std::env::var("KILN_WGPU_GEMM_N").ok().and_then(|v| v.parse().ok()).unwrap_or(256);
    match kiln_target_wgpu::bench::gemm(n, n, n, 3) {
        Ok(figs) => {
            assert!(!figs.is_empty());
            for f in figs {
                println!("gemm {n}^3 {}: {:.3} ms, {:.2} GFLOP/s (measured)", f.variant, f.seconds * 1e3, f.gflops);
                assert!(f.gflops > 0.0);
            }
        }
        Err(e @ kiln_target_wgpu::WgpuError::NoAdapter { .. }) => {
            assert!(std::env::var("KILN_REQUIRE_GPU_ADAPTER").as_deref() != Ok("1"), "KILN_REQUIRE_GPU_ADAPTER=1 but {e}");
            println!("skipped: {e}");
        }
        Err(e) => panic!("{e}"),
    }
}
