// The top of a network in one dispatch: the forward pass, the loss gradient and the backward pass
// with in-place SGD of its last one or two layers, for a training step, one workgroup per model.
// Between the phases the workgroup waits at barriers, so the whole chain of small products that
// would take 3 (one layer) or 6 (two layers) dispatches runs in one, its activations and
// gradients in workgroup memory. Layers (rows = samples, W is n_in × n_out, blocks of the
// population's models side by side as in src/model/gpu_params.ts):
//   in   H_in, R × nIn, in storage (layer l₀'s output), and its gradient G_in (the output)
//   a    hidden layer (TWO only): nIn → nA, ReLU (and dropout)      H_a in workgroup memory
//   o    output layer: nIn (or nA) → nO, softmax cross-entropy      G_o in workgroup memory
// Phases, each a loop over tasks shared by the WG invocations, a barrier after each:
//   TWO:  H_a = drop(ReLU(H_in·W_a + b_a))
//         G_o = (softmax(H_a·W_o + b_o) − Y)·scale
//         G_a = (G_o·W_oᵀ) ⊙ [H_a > 0]·dropScale
//         W_o −= η(H_aᵀ·G_o + 2λW_o), b_o −= η·Σ G_o;  G_in = (G_a·W_aᵀ) ⊙ [H_in > 0]·inScale
//         W_a −= η(H_inᵀ·G_a + 2λW_a), b_a −= η·Σ G_a
//   one:  G_o = (softmax(H_in·W_o + b_o) − Y)·scale
//         G_in = (G_o·W_oᵀ) ⊙ [H_in > 0]·inScale
//         W_o −= η(H_inᵀ·G_o + 2λW_o), b_o −= η·Σ G_o
// Every value is computed with the very operations, in the very order, of the kernels it replaces
// (matmul.wgsl's matmul_nn with bias_relu(_dropout) and bias_softmax_ce, matmul_nt with relu_mask,
// matmul_tn with sgd and bias sums): a dot product is the same chain of fma over k, the epilogue
// the same expression. So the fused step gives the same bits as the unfused one (tested). Padding
// columns in workgroup memory hold zeros, as they do in the buffers.
//
// With GATHER, the dispatch also gathers the next step's batch (gather_row.wgsl) into X and the
// labels' second buffer y, which nothing reads during this step (the products read X's texture
// copy; placement copies X and y into place after the step's last dispatch): the grid is the P
// tails, then workgroups of p.rowsPer gather rows each, about a tail's time, so that the
// contiguous runs of the grid that llvmpipe's threads take hold even work — at P = 1 the gather
// runs beside the tail instead of after it. (An idle workgroup is no cheaper: llvmpipe spends
// about 5 µs on each of this shader's.) The record's `next` says whether there is a next step to
// gather (Step, step.wgsl).
//
// Specialised per use (src/kernels/tail.ts): WG, TWO, QO, WS_N, WH_N, G_TEXTURE, DROP_A,
// HA_STORAGE, GATHER and the gather's NORM_STORAGE, AUGMENT.

const WG: u32 = 64u; // invocations of the workgroup
const TWO: bool = false; // the tail spans a hidden layer and the output layer, else the output only
const QO: u32 = 3u; // column quads of the output layer: ⌈nO/4⌉ (a whole row per softmax task)
const WS_N: u32 = 1u; // vec4s of G_o in workgroup memory: R·QO
const WH_N: u32 = 1u; // vec4s of H_a and of G_a (TWO): R·qA, else 1
const G_TEXTURE: bool = false; // G_in goes to its rgba32float texture copy instead of a buffer
const DROP_A: bool = false; // inverted dropout on H_a (TWO): matmul's bias_relu_dropout epilogue
const HA_STORAGE: bool = false; // H_a in its workspace buffer instead of workgroup memory (TWO),
//                                  when the three matrices do not fit workgroup memory together
const GATHER: bool = false; // also gather the next step's batch (gather_row.wgsl)
const TRAIN: bool = true; // gather_row.wgsl: a training batch
const X_TEXTURE: bool = false; // gather_row.wgsl: X is a buffer (copied into its texture later)
const INDEX: bool = false; // gather_row.wgsl: the batch's image indices instead of X
const NORM_STORAGE: bool = false; // gather_row.wgsl: the normalisation table's binding
const AUGMENT: bool = false; // gather_row.wgsl: augment the batch

struct Params {
  R: u32, nIn: u32, ldIn: u32, zIn: u32, // H_in and G_in: R rows of nIn, stride ldIn, blocks zIn
  nA: u32, ldA: u32, zA: u32, qA: u32, //   layer a: outputs, row stride of W_a/b_a, block, quads
  nO: u32, ldO: u32, zO: u32, lamZ: u32, // layer o likewise; λ of model z at lam[z·lamZ]
  dropSeed: u32, dropLayer: u32, dropThreshold: u32, dropScale: f32, // dropout of H_a (TWO)
  inScale: f32, scale: f32, dropTable: u32, dropScales: u32, // 1/(1−p) of H_in's dropout; the
  inScales: u32, _p1: u32, _p2: u32, _p3: u32, // loss scale 1/R; per-model dropout in lam (0: none)
  models: u32, rowsPer: u32, _p4: u32, _p5: u32, // GATHER: P, and the rows of a gather workgroup
}

// @include step

@group(0) @binding(0) var<storage, read> H: array<vec4f>;
// @if TWO
@group(0) @binding(1) var<storage, read_write> Wa: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> ba: array<vec4f>;
// @endif
@group(0) @binding(3) var<storage, read_write> Wo: array<vec4f>;
@group(0) @binding(4) var<storage, read_write> bo: array<vec4f>;
// @if G_TEXTURE
@group(0) @binding(5) var Gt: texture_storage_2d<rgba32float, write>;
// @else
@group(0) @binding(5) var<storage, read_write> G: array<vec4f>;
// @endif
@group(0) @binding(6) var<storage, read> labels: array<u32>;
@group(0) @binding(7) var<storage, read> lam: array<f32>;
@group(0) @binding(8) var<uniform> p: Params;
@group(0) @binding(9) var<uniform> st: Step;

// @include random
// @include eta
// @if GATHER
// @include gather_row
// @endif

var<workgroup> wS: array<vec4f, WS_N>; // G_o: R rows of QO quads
var<workgroup> wG: array<vec4f, WH_N>; // G_a: R rows of qA quads (TWO)
// H_a (TWO): R rows of qA quads in workgroup memory, or with HA_STORAGE its buffer in the layout of
// the activations (model z's block at z·zA, rows ldA apart), read and written through hA/setHA
// @if HA_STORAGE
@group(0) @binding(10) var<storage, read_write> Hs: array<vec4f>;
fn hA(z: u32, i: u32, q: u32) -> vec4f { return Hs[(z * p.zA) / 4u + i * (p.ldA / 4u) + q]; }
fn setHA(z: u32, i: u32, q: u32, v: vec4f) { Hs[(z * p.zA) / 4u + i * (p.ldA / 4u) + q] = v; }
// @else
var<workgroup> wH: array<vec4f, WH_N>;
fn hA(z: u32, i: u32, q: u32) -> vec4f { return wH[i * p.qA + q]; }
fn setHA(z: u32, i: u32, q: u32, v: vec4f) { wH[i * p.qA + q] = v; }
// @endif

// quad q of row i of model z's block of H_in
fn inQuad(z: u32, i: u32, q: u32) -> vec4f {
  return H[(z * p.zIn) / 4u + i * (p.ldIn / 4u) + q];
}

// the first n (≤ 4) values of v, the others zero: a quad at the right edge of a block
fn edge(v: vec4f, n: u32) -> vec4f {
  return select(vec4f(0.0), v, vec4u(0u, 1u, 2u, 3u) < vec4u(n));
}

// Dropout of H_a for model z (threshold, scale 1/(1−p)), and the scale of H_in's: the op's, or
// with per-model tables each model's own, read from lam (matmul.wgsl's dropThresholdOf).
fn dropThresholdOf(z: u32) -> u32 {
  if (p.dropTable == 0u) { return p.dropThreshold; }
  return bitcast<u32>(lam[p.dropTable + z]);
}
fn dropScaleOf(z: u32) -> f32 {
  if (p.dropTable == 0u) { return p.dropScale; }
  return lam[p.dropScales + z];
}
fn inScaleOf(z: u32) -> f32 {
  if (p.inScales == 0u) { return p.inScale; }
  return lam[p.inScales + z];
}

// λ of model z (matmul.wgsl's lamAt for a product batched over the models)
fn lamOf(z: u32) -> f32 {
  return lam[z * p.lamZ];
}

// Store the first n values of quad v at columns j.. of row i of G_in (matmul.wgsl's storeQuad).
fn storeG(v: vec4f, z: u32, i: u32, j: u32, n: u32) {
  // @if G_TEXTURE
  textureStore(Gt, vec2u((z * p.zIn + j) / 4u, i), v);
  // @else
  let q = (z * p.zIn + i * p.ldIn + j) / 4u;
  if (n >= 4u) {
    G[q] = v;
  } else {
    for (var ue = 0u; ue < 3u; ue++) { // @unroll
      if (ue < n) { G[q][ue] = v[ue]; }
    }
  }
  // @endif
}

// H_a = drop(ReLU(H_in·W_a + b_a)): matmul_nn with epilogue bias_relu(_dropout), a quad a task
fn forwardHidden(z: u32, lid: u32) {
  // @if TWO
  let K = p.nIn;
  let K4 = (K + 3u) / 4u;
  let wz = (z * p.zA) / 4u;
  for (var t = lid; t < p.R * p.qA; t += WG) {
    let i = t / p.qA;
    let jq = t % p.qA;
    let j = jq * 4u;
    var s = vec4f(0.0);
    for (var k4 = 0u; k4 < K4; k4++) {
      let a = inQuad(z, i, k4);
      let b0 = Wa[wz + min(k4 * 4u, K - 1u) * (p.ldA / 4u) + jq];
      let b1 = Wa[wz + min(k4 * 4u + 1u, K - 1u) * (p.ldA / 4u) + jq];
      let b2 = Wa[wz + min(k4 * 4u + 2u, K - 1u) * (p.ldA / 4u) + jq];
      let b3 = Wa[wz + min(k4 * 4u + 3u, K - 1u) * (p.ldA / 4u) + jq];
      s = fma(vec4f(a.x), b0, s);
      s = fma(vec4f(a.y), b1, s);
      s = fma(vec4f(a.z), b2, s);
      s = fma(vec4f(a.w), b3, s);
    }
    let col = z * p.zA + j;
    var v: vec4f;
    if (DROP_A) {
      v = max(s + ba[col / 4u], vec4f(0.0)) * dropScaleOf(z);
      let at = i * p.ldA + col;
      let threshold = dropThresholdOf(z);
      for (var ue = 0u; ue < 4u; ue++) { // @unroll
        if (!dropKeep(p.dropSeed, st.step, p.dropLayer, at + ue, threshold)) { v[ue] = 0.0; }
      }
    } else {
      v = max(s + ba[col / 4u], vec4f(0.0));
    }
    setHA(z, i, jq, edge(v, p.nA - j));
  }
  // @endif
}

// quad q of row i of the output layer's input: H_a (TWO) or H_in
fn outInput(z: u32, i: u32, q: u32) -> vec4f {
  if (TWO) { return hA(z, i, q); }
  return inQuad(z, i, q);
}

// G_o = (softmax(X·W_o + b_o) − onehot(y))·scale, a row a task: matmul_nn's tile column and
// storeSoftmax with its operations in its order
fn forwardOutput(z: u32, lid: u32) {
  let K = select(p.nIn, p.nA, TWO);
  let K4 = (K + 3u) / 4u;
  let wz = (z * p.zO) / 4u;
  for (var i = lid; i < p.R; i += WG) {
    // zeroed explicitly: a `var acc: array<…>;` declared inside a loop kept the previous task's sums
    // on llvmpipe (WGSL zeroes it at each declaration; the compiled code did not)
    var acc = array<vec4f, QO>();
    for (var k4 = 0u; k4 < K4; k4++) {
      let a = outInput(z, i, k4);
      var b: array<array<vec4f, QO>, 4>;
      for (var uq = 0u; uq < 4u; uq++) { // @unroll
        let row = min(k4 * 4u + uq, K - 1u);
        for (var uc = 0u; uc < QO; uc++) { // @unroll
          b[uq][uc] = Wo[wz + row * (p.ldO / 4u) + uc];
        }
      }
      for (var uc = 0u; uc < QO; uc++) { // @unroll
        var s = acc[uc];
        s = fma(vec4f(a.x), b[0][uc], s);
        s = fma(vec4f(a.y), b[1][uc], s);
        s = fma(vec4f(a.z), b[2][uc], s);
        s = fma(vec4f(a.w), b[3][uc], s);
        acc[uc] = s;
      }
    }
    var v: array<vec4f, QO>;
    for (var uc = 0u; uc < QO; uc++) { // @unroll
      v[uc] = acc[uc] + bo[(z * p.zO + uc * 4u) / 4u];
    }
    var m = v[0].x;
    for (var uc = 0u; uc < QO; uc++) { // @unroll
      for (var ue = 0u; ue < 4u; ue++) { // @unroll
        let c = uc * 4u + ue;
        if (c > 0u && c < p.nO && v[uc][ue] > m) { m = v[uc][ue]; }
      }
    }
    var sum = 0.0;
    for (var uc = 0u; uc < QO; uc++) { // @unroll
      for (var ue = 0u; ue < 4u; ue++) { // @unroll
        if (uc * 4u + ue < p.nO) { sum += exp(v[uc][ue] - m); }
      }
    }
    let inv = 1.0 / sum;
    let y = labels[i];
    for (var uc = 0u; uc < QO; uc++) { // @unroll
      let j = uc * 4u;
      var g: vec4f;
      for (var ue = 0u; ue < 4u; ue++) { // @unroll
        let prob = exp(v[uc][ue] - m) * inv;
        g[ue] = (prob - select(0.0, 1.0, j + ue == y)) * p.scale;
      }
      wS[i * QO + uc] = edge(g, p.nO - j);
    }
  }
}

// One quad of (Gr·Wᵀ) ⊙ [H > 0]·scale at row i, columns j..j+3 (matmul_nt with relu_mask): W's
// rows j.. (clamped to its last row n − 1) against row i of the gradient, K4 quads long.
fn inputGradOutput(z: u32, i: u32, j: u32, n: u32) -> vec4f {
  var quad: vec4f;
  for (var ue = 0u; ue < 4u; ue++) { // @unroll
    let row = min(j + ue, n - 1u);
    let wq = (z * p.zO) / 4u + row * (p.ldO / 4u);
    var s = vec4f(0.0);
    // the bound is read at run time, as in matmul_nt: with the constant QO the compiler unrolls the
    // loop and rewrites its first fma, fma(a, b, 0) → a·b, which changed 1 in 3 gradients by an ulp
    for (var k4 = 0u; k4 < (p.nO + 3u) / 4u; k4++) {
      s = fma(wS[i * QO + k4], Wo[wq + k4], s);
    }
    quad[ue] = (s.x + s.y) + (s.z + s.w);
  }
  return quad;
}

// G_a = (G_o·W_oᵀ) ⊙ [H_a > 0]·dropScale (TWO), or G_in = (G_o·W_oᵀ) ⊙ [H_in > 0]·inScale
fn backwardInputOutput(z: u32, lid: u32) {
  if (TWO) {
    for (var t = lid; t < p.R * p.qA; t += WG) {
      let i = t / p.qA;
      let jq = t % p.qA;
      let quad = inputGradOutput(z, i, jq * 4u, p.nA);
      wG[t] = select(vec4f(0.0), quad * dropScaleOf(z), hA(z, i, jq) > vec4f(0.0));
    }
  } else {
    let qIn = (p.nIn + 3u) / 4u;
    for (var t = lid; t < p.R * qIn; t += WG) {
      let i = t / qIn;
      let j = (t % qIn) * 4u;
      let quad = inputGradOutput(z, i, j, p.nIn);
      let v = select(vec4f(0.0), quad * inScaleOf(z), inQuad(z, i, j / 4u) > vec4f(0.0));
      storeG(v, z, i, j, p.nIn - j);
    }
  }
}

// G_in = (G_a·W_aᵀ) ⊙ [H_in > 0]·inScale (TWO): matmul_nt with relu_mask
fn backwardInputHidden(z: u32, lid: u32) {
  // @if TWO
  let qIn = (p.nIn + 3u) / 4u;
  for (var t = lid; t < p.R * qIn; t += WG) {
    let i = t / qIn;
    let j = (t % qIn) * 4u;
    var quad: vec4f;
    for (var ue = 0u; ue < 4u; ue++) { // @unroll
      let row = min(j + ue, p.nIn - 1u);
      let wq = (z * p.zA) / 4u + row * (p.ldA / 4u);
      var s = vec4f(0.0);
      for (var k4 = 0u; k4 < p.qA; k4++) {
        s = fma(wG[i * p.qA + k4], Wa[wq + k4], s);
      }
      quad[ue] = (s.x + s.y) + (s.z + s.w);
    }
    let v = select(vec4f(0.0), quad * inScaleOf(z), inQuad(z, i, j / 4u) > vec4f(0.0));
    storeG(v, z, i, j, p.nIn - j);
  }
  // @endif
}

// W_o −= η(Xᵀ·G_o + 2λW_o) and b_o −= η·Σ_rows G_o, X = H_a (TWO) or H_in: matmul_tn with the sgd
// epilogue and bias sums, a task 4 rows × 1 quad of W_o (or one quad of b_o)
fn updateOutput(z: u32, lid: u32) {
  let M = select(p.nIn, p.nA, TWO);
  let M4 = (M + 3u) / 4u;
  let wz = z * p.zO;
  for (var t = lid; t < M4 * QO + QO; t += WG) {
    if (t < M4 * QO) {
      let i4 = t / QO;
      let jq = t % QO;
      var acc = array<vec4f, 4>(); // explicitly zero for every task
      for (var k = 0u; k < p.R; k++) {
        let a = outInput(z, k, i4);
        let b = wS[k * QO + jq];
        for (var ue = 0u; ue < 4u; ue++) { // @unroll
          acc[ue] = fma(vec4f(a[ue]), b, acc[ue]);
        }
      }
      let j = jq * 4u;
      for (var ue = 0u; ue < 4u; ue++) { // @unroll
        let i = i4 * 4u + ue;
        if (i < M) {
          let q = (wz + i * p.ldO + j) / 4u;
          let w = Wo[q];
          let v = w - etaOf(z) * (acc[ue] + 2.0 * lamOf(z) * w);
          storeW(v, q, p.nO - j, true);
        }
      }
    } else {
      let jq = t - M4 * QO;
      var bsum = vec4f(0.0);
      for (var k = 0u; k < p.R; k++) {
        bsum += wS[k * QO + jq];
      }
      let q = (wz + jq * 4u) / 4u;
      storeW(bo[q] - etaOf(z) * bsum, q, p.nO - jq * 4u, false);
    }
  }
}

// W_a −= η(H_inᵀ·G_a + 2λW_a) and b_a −= η·Σ_rows G_a (TWO), as updateOutput does for layer o
fn updateHidden(z: u32, lid: u32) {
  // @if TWO
  let M4 = (p.nIn + 3u) / 4u;
  let wz = z * p.zA;
  for (var t = lid; t < M4 * p.qA + p.qA; t += WG) {
    if (t < M4 * p.qA) {
      let i4 = t / p.qA;
      let jq = t % p.qA;
      var acc = array<vec4f, 4>(); // explicitly zero for every task
      for (var k = 0u; k < p.R; k++) {
        let a = inQuad(z, k, i4);
        let b = wG[k * p.qA + jq];
        for (var ue = 0u; ue < 4u; ue++) { // @unroll
          acc[ue] = fma(vec4f(a[ue]), b, acc[ue]);
        }
      }
      let j = jq * 4u;
      for (var ue = 0u; ue < 4u; ue++) { // @unroll
        let i = i4 * 4u + ue;
        if (i < p.nIn) {
          let q = (wz + i * p.ldA + j) / 4u;
          let w = Wa[q];
          let v = w - etaOf(z) * (acc[ue] + 2.0 * lamOf(z) * w);
          let n = p.nA - j;
          if (n >= 4u) {
            Wa[q] = v;
          } else {
            for (var uf = 0u; uf < 3u; uf++) { // @unroll
              if (uf < n) { Wa[q][uf] = v[uf]; }
            }
          }
        }
      }
    } else {
      let jq = t - M4 * p.qA;
      var bsum = vec4f(0.0);
      for (var k = 0u; k < p.R; k++) {
        bsum += wG[k * p.qA + jq];
      }
      let q = (wz + jq * 4u) / 4u;
      let v = ba[q] - etaOf(z) * bsum;
      let n = p.nA - jq * 4u;
      if (n >= 4u) {
        ba[q] = v;
      } else {
        for (var uf = 0u; uf < 3u; uf++) { // @unroll
          if (uf < n) { ba[q][uf] = v[uf]; }
        }
      }
    }
  }
  // @endif
}

// Store the first n values of v into quad q of W_o (weights) or b_o (bias).
fn storeW(v: vec4f, q: u32, n: u32, weights: bool) {
  if (n >= 4u) {
    if (weights) { Wo[q] = v; } else { bo[q] = v; }
  } else {
    for (var ue = 0u; ue < 3u; ue++) { // @unroll
      if (ue < n) {
        if (weights) { Wo[q][ue] = v[ue]; } else { bo[q][ue] = v[ue]; }
      }
    }
  }
}

// the phases of one model's step; every invocation reaches every barrier (uniform control flow)
@compute @workgroup_size(WG)
fn tail(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let z = wid.x;
  // @if GATHER
  if (wid.x >= p.models) {
    if (st.next != 0u) {
      let first = (wid.x - p.models) * p.rowsPer;
      gatherRows(lid, first, min(first + p.rowsPer, gp.R), st.nextEpoch, st.nextPos);
    }
    return;
  }
  // @endif
  if (TWO) {
    forwardHidden(z, lid);
    storageBarrier();
    workgroupBarrier();
  }
  forwardOutput(z, lid);
  storageBarrier();
  workgroupBarrier();
  backwardInputOutput(z, lid);
  storageBarrier();
  workgroupBarrier();
  updateOutput(z, lid);
  if (TWO) {
    backwardInputHidden(z, lid);
    storageBarrier();
    workgroupBarrier();
    updateHidden(z, lid);
  }
}
