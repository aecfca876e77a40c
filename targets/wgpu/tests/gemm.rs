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

/// The evidence behind "int8 is not supported on the wgpu target" (see `kiln_target_wgpu::int8`):
/// a GEMM on WGSL's `dot4I8Packed` computes exactly (int32 against the host) and is timed next
/// to the f32 GEMM's best variant at the same size. Prints the ratio; the exactness is what is
/// asserted (the ratio depends on the adapter). Without an adapter: skipped.
#[test]
fn int8_dot_product_gemm_is_exact_and_timed_against_f32() {
    let n = std::env::var("KILN_WGPU_GEMM_N").ok().and_then(|v| v.parse().ok()).unwrap_or(256);
    match kiln_target_wgpu::bench_int8::int8_evidence(n, n, n, 3) {
        Ok(e) => {
            println!(
                "gemm {n}^3 (measured): int8 dot4I8Packed {:.3} ms ({:.2} GOP/s); same loop f32 vec4 {:.3} ms ({:.2} GFLOP/s); wgpu.matmul best {} {:.3} ms ({:.2} GFLOP/s); int8 takes {:.2}x the f32 vec4 time, {:.2}x wgpu.matmul's",
                e.int8.seconds * 1e3,
                e.int8.gflops,
                e.f32x4.seconds * 1e3,
                e.f32x4.gflops,
                e.f32_best.variant,
                e.f32_best.seconds * 1e3,
                e.f32_best.gflops,
                e.int8.seconds / e.f32x4.seconds.max(1e-12),
                e.ratio()
            );
            assert!(e.exact, "the int8 GEMM differs from the host's int32 result");
        }
        Err(e @ kiln_target_wgpu::WgpuError::NoAdapter { .. }) => {
            assert!(std::env::var("KILN_REQUIRE_GPU_ADAPTER").as_deref() != Ok("1"), "KILN_REQUIRE_GPU_ADAPTER=1 but {e}");
            println!("skipped: {e}");
        }
        Err(e) => panic!("{e}"),
    }
}
