// kiln::QMatMul's A, read straight: row `row`, column `k` of X `[M, K]`. p: [M * K4, K4, K]
fn tap(row: u32, k: u32) -> f32 {
    return f32(x[row * P(2u) + k]);
}
