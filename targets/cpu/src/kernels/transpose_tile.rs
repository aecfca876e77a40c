//! 8 x 8 tiles of f32 transposed in registers (AVX: unpack, shuffle, swap lanes), for the
//! blocked 2-D transpose of `cpu.transpose` (NHWC <-> NCHW). Elsewhere a scalar loop.
//! Unsafe code: the AVX intrinsics, behind a bounds check and runtime feature detection.
#![allow(unsafe_code)]

/// Writes the transpose of the `8 x 8` tile at `src` (row stride `ss`) to `dst` (row stride
/// `ds`): `dst[j * ds + i] = src[i * ss + j]`. False (nothing written) when the slices are too
/// short for the tile.
pub(crate) fn transpose8(src: &[f32], ss: usize, dst: &mut [f32], ds: usize) -> bool {
    if src.len() < 7 * ss + 8 || dst.len() < 7 * ds + 8 {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    if super::cpu_features().avx2 {
        // SAFETY: avx2 was detected on this CPU; the tile's 8 rows of 8 lie inside both slices
        // (checked above), and the loads and stores are unaligned ones.
        unsafe { avx::transpose8(src.as_ptr(), ss, dst.as_mut_ptr(), ds) };
        return true;
    }
    for i in 0..8 {
        for j in 0..8 {
            dst[j * ds + i] = src[i * ss + j];
        }
    }
    true
}

#[cfg(target_arch = "x86_64")]
mod avx {
    use std::arch::x86_64::*;

    /// # Safety
    /// Needs AVX2 and rows `src + i ss .. + 8`, `dst + i ds .. + 8` (i < 8) in bounds.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn transpose8(src: *const f32, ss: usize, dst: *mut f32, ds: usize) {
        // SAFETY: the caller guarantees every row read and written here is in bounds.
        unsafe {
            let r: [__m256; 8] = std::array::from_fn(|i| _mm256_loadu_ps(src.add(i * ss)));
            // Pairs of rows interleaved, then 4-element groups, then 128-bit lanes swapped.
            let t0 = _mm256_unpacklo_ps(r[0], r[1]);
            let t1 = _mm256_unpackhi_ps(r[0], r[1]);
            let t2 = _mm256_unpacklo_ps(r[2], r[3]);
            let t3 = _mm256_unpackhi_ps(r[2], r[3]);
            let t4 = _mm256_unpacklo_ps(r[4], r[5]);
            let t5 = _mm256_unpackhi_ps(r[4], r[5]);
            let t6 = _mm256_unpacklo_ps(r[6], r[7]);
            let t7 = _mm256_unpackhi_ps(r[6], r[7]);
            let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
            let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
            let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
            let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
            let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
            let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
            let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
            let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
            let out = [
                _mm256_permute2f128_ps::<0x20>(u0, u4),
                _mm256_permute2f128_ps::<0x20>(u1, u5),
                _mm256_permute2f128_ps::<0x20>(u2, u6),
                _mm256_permute2f128_ps::<0x20>(u3, u7),
                _mm256_permute2f128_ps::<0x31>(u0, u4),
                _mm256_permute2f128_ps::<0x31>(u1, u5),
                _mm256_permute2f128_ps::<0x31>(u2, u6),
                _mm256_permute2f128_ps::<0x31>(u3, u7),
            ];
            for (j, v) in out.into_iter().enumerate() {
                _mm256_storeu_ps(dst.add(j * ds), v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tiles_transpose_and_short_slices_are_refused() {
        let (ss, ds) = (11, 9);
        let src: Vec<f32> = (0..7 * ss + 8).map(|v| v as f32).collect();
        let mut dst = vec![-1.0; 7 * ds + 8];
        assert!(super::transpose8(&src, ss, &mut dst, ds));
        for i in 0..8 {
            for j in 0..8 {
                assert_eq!(dst[j * ds + i], src[i * ss + j], "({i}, {j})");
            }
        }
        assert!(!super::transpose8(&src[1..], ss, &mut dst, ds));
        assert!(!super::transpose8(&src, ss, &mut dst[1..], ds));
    }
}
