// Batch normalisation of a hidden layer for a population of Z models side by side (layout of
// src/model/gpu_params.ts). The layer's pre-activations Z = H_prev·W (no bias) are R rows of
// stride ld; model z's N logical columns start at column z·zStride. Per column (z, j), over the
// rows i of the batch:
//   μ = (1/R) Σ_i Z_i      v = (1/R) Σ_i (Z_i − μ)²  (biased)      s = 1/√(v + ε)
//   Ẑ = (Z − μ)·s          S = γ⊙Ẑ + β                              H = ReLU(S)
//   dropout (inverted):    H ← keep ? H/(1−p) : 0,  keep = dropKeep(seed, step, layer, i·ld + col)
//   running statistics:    μ_av ← α·μ_av + (1−α)·μ,   v_av ← α·v_av + (1−α)·v
// Backward, from G = dL/dS (ReLU mask and dropout scaling already applied by the caller):
//   dγ = Σ_i G⊙Ẑ    dβ = Σ_i G    G_Ẑ = G⊙γ
//   dZ = s·(G_Ẑ − mean_i G_Ẑ − Ẑ⊙mean_i(G_Ẑ⊙Ẑ))       (the full gradient through μ and v)
// γ, β, μ_av, v_av, s and the gradients dγ, dβ are vectors laid out like a row of Z.
//
// Entry points (one bind-group layout for all three; bindings 0–7 change role, see below):
//   bn_forward_train  one invocation per logical column: three passes over the R rows (μ, v,
//                     then Ẑ/H). Z is overwritten with Ẑ in place; s is stored for backward.
//   bn_forward_eval   one invocation per logical entry: H = ReLU(γ·(Z − μ_av)/√(v_av + ε) + β),
//                     no dropout, no statistics. With ROWS, rows ≥ st.rows are skipped (left
//                     as they were); otherwise all R rows are computed.
//   bn_backward       one invocation per logical column: one pass for the sums, one writing dZ
//                     over G in place; then γ, β are updated (SGD) or dγ, dβ stored (STORE).
// Padding columns (j ≥ N inside a block, and columns past the last block) are never touched.
// Sums over rows run in blocks of BLOCK rows (error ~(BLOCK + R/BLOCK)·ε rather than R·ε).
// llvmpipe stops an invocation after 65,535 loop iterations in total (later rows are silently
// skipped): the training forward runs 3R + 4⌈R/BLOCK⌉ of them (each blocked inner loop's exit
// test counts too; measured: R = 21500 already loses rows), so R ≤ 20000, checked by
// src/kernels/batchnorm.ts.
//
// Specialised per use (src/kernels/batchnorm.ts): WG, DROPOUT, SGD, ROWS.

const WG: u32 = 64u; // invocations per workgroup
const BLOCK: u32 = 64u; // rows per partial sum
const DROPOUT: bool = false; // bn_forward_train: apply inverted dropout after the ReLU
const SGD: bool = false; // bn_backward: update γ, β in place (else store dγ, dβ)
const ROWS: bool = false; // bn_forward_eval: skip rows ≥ st.rows

struct Params {
  R: u32, N: u32, Z: u32, ld: u32,
  zStride: u32, eps: f32, alpha: f32, l2: u32, // l2: L2 applies to γ, β (0 or 1)
  seed: u32, layer: u32, threshold: u32, dropScale: f32, // dropout: p·2³², 1/(1−p)
  gx: u32, dropTable: u32, dropScales: u32, _c: u32, // gx: workgroups along x (bn_forward_eval);
  //                                         per-model dropout thresholds and scales in lam (0: none)
}

// @include step

//                                                              forward        backward
@group(0) @binding(0) var<storage, read_write> Zb: array<f32>; //   Z → Ẑ (eval: Z) Ẑ
@group(0) @binding(1) var<storage, read_write> HG: array<f32>; //   H               G → dZ
@group(0) @binding(2) var<storage, read_write> gamma: array<f32>; // γ              γ (SGD: updated)
@group(0) @binding(3) var<storage, read_write> beta: array<f32>; //  β              β (SGD: updated)
@group(0) @binding(4) var<storage, read_write> vecA: array<f32>; //  μ_av           dγ (STORE)
@group(0) @binding(5) var<storage, read_write> vecB: array<f32>; //  v_av           dβ (STORE)
@group(0) @binding(6) var<storage, read_write> invStd: array<f32>; // s (train: out) s
@group(0) @binding(7) var<storage, read> lam: array<f32>; //         unused         λ per model
@group(0) @binding(8) var<uniform> p: Params;
@group(0) @binding(9) var<uniform> st: Step;

// @include random
// @include eta

// Column index (within a row) of logical column t = z·N + j.
fn columnOf(t: u32) -> u32 {
  return (t / p.N) * p.zStride + t % p.N;
}

// Σ_i (Z_i − shift), or Σ_i (Z_i − shift)² when `square`, over the R rows of column `col`.
fn columnMoment(col: u32, shift: f32, square: bool) -> f32 {
  var total = 0.0;
  for (var i0 = 0u; i0 < p.R; i0 += BLOCK) {
    let end = min(i0 + BLOCK, p.R);
    var part = 0.0;
    for (var i = i0; i < end; i++) {
      let d = Zb[i * p.ld + col] - shift;
      part += select(d, d * d, square);
    }
    total += part;
  }
  return total;
}

@compute @workgroup_size(WG)
fn bn_forward_train(@builtin(global_invocation_id) gid: vec3u) {
  if (gid.x >= p.N * p.Z) { return; }
  let col = columnOf(gid.x);
  let invR = 1.0 / f32(p.R);
  let mu = columnMoment(col, 0.0, false) * invR;
  let v = columnMoment(col, mu, true) * invR; // R = 1: exactly 0, s = 1/√ε, Ẑ = 0
  let s = 1.0 / sqrt(v + p.eps);
  let g = gamma[col];
  let b = beta[col];
  // dropout's threshold and scale: the op's, or the model's own (a per-model table in lam)
  var threshold = p.threshold;
  var scale = p.dropScale;
  if (DROPOUT && p.dropTable != 0u) {
    let z = gid.x / p.N;
    threshold = bitcast<u32>(lam[p.dropTable + z]);
    scale = lam[p.dropScales + z];
  }
  for (var i = 0u; i < p.R; i++) {
    let idx = i * p.ld + col;
    let zh = (Zb[idx] - mu) * s;
    Zb[idx] = zh;
    var h = max(g * zh + b, 0.0);
    if (DROPOUT) {
      h = select(0.0, h * scale, dropKeep(p.seed, st.step, p.layer, idx, threshold));
    }
    HG[idx] = h;
  }
  vecA[col] = p.alpha * vecA[col] + (1.0 - p.alpha) * mu;
  vecB[col] = p.alpha * vecB[col] + (1.0 - p.alpha) * v;
  invStd[col] = s;
}

@compute @workgroup_size(WG)
fn bn_forward_eval(@builtin(global_invocation_id) gid: vec3u) {
  let cols = p.N * p.Z;
  let t = gid.y * (p.gx * WG) + gid.x;
  if (t >= p.R * cols) { return; }
  let i = t / cols;
  if (ROWS && i >= st.rows) { return; }
  let col = columnOf(t % cols);
  let idx = i * p.ld + col;
  let s = 1.0 / sqrt(vecB[col] + p.eps);
  HG[idx] = max(gamma[col] * ((Zb[idx] - vecA[col]) * s) + beta[col], 0.0);
}

@compute @workgroup_size(WG)
fn bn_backward(@builtin(global_invocation_id) gid: vec3u) {
  if (gid.x >= p.N * p.Z) { return; }
  let z = gid.x / p.N;
  let col = columnOf(gid.x);
  var sg = 0.0; //  Σ_i G       = dβ
  var sgx = 0.0; // Σ_i G⊙Ẑ     = dγ
  for (var i0 = 0u; i0 < p.R; i0 += BLOCK) {
    let end = min(i0 + BLOCK, p.R);
    var pg = 0.0;
    var pgx = 0.0;
    for (var i = i0; i < end; i++) {
      let idx = i * p.ld + col;
      let g = HG[idx];
      pg += g;
      pgx += g * Zb[idx];
    }
    sg += pg;
    sgx += pgx;
  }
  let gm = gamma[col];
  let bt = beta[col];
  let invR = 1.0 / f32(p.R);
  let meanGz = gm * sg * invR; //   mean_i G_Ẑ
  let meanGzx = gm * sgx * invR; // mean_i G_Ẑ⊙Ẑ
  let s = invStd[col];
  for (var i = 0u; i < p.R; i++) {
    let idx = i * p.ld + col;
    HG[idx] = s * (gm * HG[idx] - meanGz - Zb[idx] * meanGzx);
  }
  var lam2 = 0.0;
  if (p.l2 != 0u) { lam2 = 2.0 * lam[z]; }
  if (SGD) {
    let eta = etaOf(z);
    gamma[col] = gm - eta * (sgx + lam2 * gm);
    beta[col] = bt - eta * (sg + lam2 * bt);
  } else {
    vecA[col] = sgx + lam2 * gm;
    vecB[col] = sg + lam2 * bt;
  }
}
