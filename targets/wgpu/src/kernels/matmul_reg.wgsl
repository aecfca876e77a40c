// Register-blocked GEMM: Y[M, N] = act(alpha * A[M, K] @ B + bias), B [K, N] or [N, K]
// (transB). A TX x TY workgroup computes a BM x BN tile; each thread an RM x RN block of it
// in registers (RM x RN/4 vec4 accumulators), BK columns of A at a time through workgroup
// memory. Per k a thread reads RM/4 + RN/4 vec4s of the tiles and does RM * RN FMAs.
// Thread (tx, ty) owns rows (i4 * TY + ty) * 4 + 0..3 and columns (j4 * TX + tx) * 4 + 0..3
// (i4 < RM/4, j4 < RN/4): neighbouring threads read neighbouring vec4s of a tile. The
// generated parts (matmul_reg.rs): the operand element type VT (ST, or vec4<ST> for vector
// loads), the tile loads, the k loop unrolled by U, the accumulators and the stores.
// Tensors are ST (f32, or f16 in an f16 plan: products in f16, sums in f32, stores through
// to_st); see runtime::Float::header.
// p: [M, N, K, transB, alpha bits, has_bias]
const BM: u32 = {BM}u;
const BN: u32 = {BN}u;
const BK: u32 = {BK}u;
const TX: u32 = {TX}u;
const TY: u32 = {TY}u;
const T: u32 = TX * TY;
// Row pitch of the k-major tiles in vec4s, one vec4 of padding against bank conflicts.
const AP: u32 = BM / 4u + 1u;
const BP: u32 = BN / 4u + 1u;

@group(0) @binding(1) var<storage, read> a: array<{VT}>;
@group(0) @binding(2) var<storage, read> b: array<{VT}>;
@group(0) @binding(3) var<storage, read> bias: array<ST>;
@group(0) @binding(4) var<storage, read_write> y: array<{VT}>;

// As[k * AP + m / 4][m % 4] = A[row0 + m, k0 + k]; Bs[k * BP + n / 4][n % 4] = B(k0 + k, col0 + n).
var<workgroup> As: array<vec4<ST>, {AS}>;
var<workgroup> Bs: array<vec4<ST>, {BS}>;

fn act(x: f32) -> f32 {
    return {EPILOGUE};
}

{HELPERS}

@compute @workgroup_size({TX}, {TY}, 1)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let M = P(0u);
    let N = P(1u);
    let K = P(2u);
    let tb = P(3u);
    let tx = lid.x;
    let ty = lid.y;
    let t = ty * TX + tx;
    let row0 = wid.y * BM;
    let col0 = wid.x * BN;
{ACC}
    for (var k0 = 0u; k0 < K; k0 = k0 + BK) {
{LOAD_A}
        if (tb == 1u) {
{LOAD_BT}
        } else {
{LOAD_B}
        }
        workgroupBarrier();
{INNER}
        workgroupBarrier();
    }
{STORE}
}
