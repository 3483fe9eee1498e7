// Register-tiled matrix products C(z) = A(z)·B(z) with a fused epilogue, for every product a
// fully connected layer needs (rows = samples, W is n_in × n_out):
//   matmul_nn: C = A·B     forward        Z = H·W            (A row-major, B row-major)
//   matmul_tn: C = Aᵀ·B    weight grad    dW = Hᵀ·G          (A stored K×M)
//   matmul_nt: C = A·Bᵀ    input grad     dH = G·Wᵀ          (B stored N×K)
// Element (z, i, k) of an operand lives at off + z·zstride + row·ld + col, every ld and offset a
// multiple of 4 so that the contiguous dimension loads as vec4. Padding columns (between the
// logical width and the padded width) hold zeros and are never written, which makes the
// vec4 loads past a logical edge harmless; out-of-range rows are clamped on load and skipped
// on store. Each invocation computes a TM×(4·TN4) tile, reading both operands once per k.
// Loops over the tile are marked `// @unroll` and expanded before compilation
// (src/gpu/shaders.ts), so the tile lives in registers on every compiler.
//
// Specialised per use (src/kernels/matmul.ts): TM, TN4 (tile), WG (workgroup size), EPI.
//
// Two families of entry points share the loads and every epilogue: matmul_nn/tn/nt (the `cpu`
// profile: one invocation per output tile, each running the whole K loop) and, with SPLIT,
// matmul_nn/tn/nt_split (the `gpu` profile: KS invocations per output tile, each summing a slice of
// K, then a tree reduction in workgroup memory; see the end of this file).

const TM: u32 = 8u; // rows of C per invocation (nn, nt); multiple of 4 for tn
const TN4: u32 = 2u; // column quads of C per invocation
const TM4: u32 = TM / 4u; // row quads (tn)
const TM3: u32 = TM + 3u;
const TM4P: u32 = TM3 / 4u; // ⌈TM/4⌉: TM4 where tn runs (TM a multiple of 4), at least 1 (an array's size)
const TN: u32 = TN4 * 4u; // columns (nt)
const WG: u32 = 8u; // invocations per workgroup
const EPI: u32 = 0u; // epilogue, see `finish`
const BIAS: u32 = 0u; // matmul_tn only: also the column sums of B (a bias gradient), see below
const A_TEXTURE: bool = false; // A read from an rgba32float texture, see aRow/loadA
const A_IMAGES: bool = false; // A's rows are dataset images through an index, see aRow/loadA
const A_IMAGE_ROW: u32 = 8u; // A_IMAGES: images a texture row (src/data/resident.ts)
const B_TEXTURE: bool = false; // B read from an rgba32float texture, see bBase/loadB
const A_STORAGE: bool = false; // A_TEXTURE bound as a read-only storage texture (else sampled)
const B_STORAGE: bool = false; // B_TEXTURE likewise
const A_WRAP: u32 = 0u; // A_TEXTURE holds A's quads in order, 2^A_WRAP a row (0: a row of A), see aTexel
const B_WRAP: u32 = 0u; // B_TEXTURE likewise, see bTexel
const SOFTMAX: bool = false; // EPI_BIAS_SOFTMAX_CE: the labels are bound, see storeSoftmax
const SPLIT: bool = false; // the `gpu` profile's entry points (K split in the workgroup), see below
const TN_TILE: bool = true; // TM is a multiple of 4 (whole row quads of A): matmul_tn(_split) exist

const EPI_STORE: u32 = 0u; //      C = acc
const EPI_BIAS: u32 = 1u; //       C = acc + bias[col]
const EPI_BIAS_RELU: u32 = 2u; //  C = max(acc + bias[col], 0)
const EPI_RELU_MASK: u32 = 3u; //  C = acc · [aux > 0]          (ReLU backward, aux = H)
const EPI_SGD: u32 = 4u; //        C -= eta · (acc + 2λ·C)       (in-place SGD with L2, C = W)
const EPI_GRAD_L2: u32 = 5u; //    C = acc + 2λ·aux              (gradient with L2, aux = W)
const EPI_BIAS_RELU_DROP: u32 = 6u; // C = dropout(max(acc + bias[col], 0)): inverted dropout, the
//                                    mask from random.wgsl's dropKeep(seed, step, layer, i·ldc + col)
// EPI_RELU_MASK multiplies by dropScale = 1/(1−p) too, the derivative of a kept dropout unit.
const EPI_BIAS_SOFTMAX_CE: u32 = 7u; // matmul_nn, one tile column (4·TN4 ≥ N): the output layer
//   and its loss in one pass, C = (softmax(acc + bias) − onehot(y)) · scale, see storeSoftmax

struct Params {
  M: u32, N: u32, K: u32, tilesN: u32,
  lda: u32, ldb: u32, ldc: u32, tilesM: u32,
  aOff: u32, bOff: u32, cOff: u32, auxOff: u32,
  aZ: u32, bZ: u32, cZ: u32, lamZ: u32,
  dropSeed: u32, dropLayer: u32, dropThreshold: u32, dropScale: f32,
  lamCols: u32, scale: f32, dropTable: u32, dropScales: u32, // per-model dropout in lam (0: none)
}

// @include step

// Operand A is a storage buffer, or, for a batch of inputs shared by every z (layer 1), an
// rgba32float texture: llvmpipe loads texels for a fraction of the cost of buffer elements, which
// made these products 1.15–1.3× faster. aRow gives the base of row `row`, loadA the quad there.
// A texture is bound for sampling or, where WGSL allows it (A_STORAGE), as a read-only storage
// texture, whose loads llvmpipe runs without the sampler's level and bounds arithmetic: layer 1's
// forward product 1.6–1.9× faster. Both load the same texel.
// A wrapped texture (A_WRAP > 0) holds A's quads in the order of its buffer, wrapped at 2^A_WRAP
// texels a texture row: quad q of row r, t = r·lda/4 + q, is texel (t mod 2^A_WRAP, t / 2^A_WRAP).
// That is what copyBufferToTexture makes of a buffer whose rows of lda floats are not a multiple
// of 256 bytes (src/kernels/placement.ts). Otherwise texture row r is row r of A.
// A_IMAGES: A holds no values of its own. Its rows are dataset images (rows of 3072 u8 pixels,
// 768 rgba8uint texels, A_IMAGE_ROW of them a texture row) that aIndex names, one u32 a row, and
// its values their normalised pixels (u − mean) · (1/std), per dimension from aNorm (768 × 2
// texels: row 0 the means, row 1 the inverse stds) — the numbers the gather would have written
// into X, by the same two operations (gather_row.wgsl), so the products give the same bits.
// Layer 1's products then read the batch straight from the dataset: no gather of 3072 floats a
// row, no copy of X into its texture. aRow gives the image, loadA a normalised quad of it; tn loads
// the normalisation of its tile's quads once (setTileNorm) and applies it in loadTileA.
// @if A_IMAGES
@group(0) @binding(9) var<storage, read> aIndex: array<u32>;
fn aRow(z: u32, row: u32) -> u32 { return aIndex[row]; }
fn imageTexel(img: u32, quad: u32) -> vec2u {
  return vec2u((img % A_IMAGE_ROW) * 768u + quad, img / A_IMAGE_ROW);
}
// @if A_STORAGE
@group(0) @binding(0) var Ai: texture_storage_2d<rgba8uint, read>;
@group(0) @binding(10) var aNorm: texture_storage_2d<rgba32float, read>;
fn loadRaw(img: u32, quad: u32) -> vec4f { return vec4f(textureLoad(Ai, imageTexel(img, quad))); }
fn normOf(quad: u32, which: u32) -> vec4f { return textureLoad(aNorm, vec2u(quad, which)); }
// @else
@group(0) @binding(0) var Ai: texture_2d<u32>;
@group(0) @binding(10) var aNorm: texture_2d<f32>;
fn loadRaw(img: u32, quad: u32) -> vec4f { return vec4f(textureLoad(Ai, imageTexel(img, quad), 0)); }
fn normOf(quad: u32, which: u32) -> vec4f { return textureLoad(aNorm, vec2u(quad, which), 0); }
// @endif
fn loadA(img: u32, quad: u32) -> vec4f {
  return (loadRaw(img, quad) - normOf(quad, 0u)) * normOf(quad, 1u);
}
// tn: the normalisation of the tile's TM4 quads of A, loaded once (setTileNorm) for all of K
var<private> tileNorm: array<array<vec4f, 2>, TM4P>;
fn setTileNorm(colA: array<u32, TM4P>) {
  for (var ur = 0u; ur < TM4P; ur++) { // @unroll
    tileNorm[ur][0] = normOf(colA[ur], 0u);
    tileNorm[ur][1] = normOf(colA[ur], 1u);
  }
}
fn loadTileA(img: u32, quad: u32, ur: u32) -> vec4f {
  return (loadRaw(img, quad) - tileNorm[ur][0]) * tileNorm[ur][1];
}
// @else
// @if A_TEXTURE
fn aTexel(row: u32, quad: u32) -> vec2u {
  if (A_WRAP == 0u) { return vec2u(quad, row); }
  let t = row * (p.lda / 4u) + quad;
  return vec2u(t & ((1u << A_WRAP) - 1u), t >> A_WRAP);
}
// @if A_STORAGE
@group(0) @binding(0) var At: texture_storage_2d<rgba32float, read>;
fn loadA(base: u32, quad: u32) -> vec4f { return textureLoad(At, aTexel(base, quad)); }
// @else
@group(0) @binding(0) var At: texture_2d<f32>;
fn loadA(base: u32, quad: u32) -> vec4f { return textureLoad(At, aTexel(base, quad), 0); }
// @endif
fn aRow(z: u32, row: u32) -> u32 { return row; }
// @else
@group(0) @binding(0) var<storage, read> A: array<vec4f>;
fn aRow(z: u32, row: u32) -> u32 { return (p.aOff + z * p.aZ) / 4u + row * (p.lda / 4u); }
fn loadA(base: u32, quad: u32) -> vec4f { return A[base + quad]; }
// @endif
fn setTileNorm(colA: array<u32, TM4P>) {}
fn loadTileA(base: u32, quad: u32, ur: u32) -> vec4f { return loadA(base, quad); }
// @endif
// Operand B likewise: a storage buffer, or an rgba32float texture whose row r holds row r of B for
// every z side by side (batch entry z starts at texel z·zstride/4). loadB(zq, row, quad) reads quad
// `quad` of row `row` of batch entry z, zq being bBase(z).
// @if B_TEXTURE
// A wrapped texture (B_WRAP > 0) holds B's quads in the order of its buffer (rows of ldb floats,
// entry z from float z·bZ), 2^B_WRAP a texture row, as for A (see aTexel).
fn bTexel(zq: u32, row: u32, quad: u32) -> vec2u {
  if (B_WRAP == 0u) { return vec2u(zq + quad, row); }
  let t = zq + row * (p.ldb / 4u) + quad;
  return vec2u(t & ((1u << B_WRAP) - 1u), t >> B_WRAP);
}
// @if B_STORAGE
@group(0) @binding(1) var Bt: texture_storage_2d<rgba32float, read>;
fn loadB(zq: u32, row: u32, quad: u32) -> vec4f { return textureLoad(Bt, bTexel(zq, row, quad)); }
// @else
@group(0) @binding(1) var Bt: texture_2d<f32>;
fn loadB(zq: u32, row: u32, quad: u32) -> vec4f { return textureLoad(Bt, bTexel(zq, row, quad), 0); }
// @endif
fn bBase(z: u32) -> u32 { return z * p.bZ / 4u; }
// @else
@group(0) @binding(1) var<storage, read> B: array<vec4f>;
fn bBase(z: u32) -> u32 { return (p.bOff + z * p.bZ) / 4u; }
fn loadB(zq: u32, row: u32, quad: u32) -> vec4f { return B[zq + row * (p.ldb / 4u) + quad]; }
// @endif
@group(0) @binding(2) var<storage, read_write> C: array<vec4f>;
@group(0) @binding(3) var<uniform> p: Params;
@group(0) @binding(4) var<storage, read> aux: array<vec4f>;
@group(0) @binding(5) var<storage, read> lam: array<f32>;
@group(0) @binding(6) var<uniform> st: Step;
// matmul_tn with BIAS: db[col] = Σ_k B(z, k, j), the bias gradient when B is a layer's output
// gradient, computed by the first row of tiles alongside dW = Aᵀ·B (it reads the same B):
//   BIAS_STORE: bias[col] = db        BIAS_SGD: bias[col] −= eta · db   (biases carry no L2)
@group(0) @binding(7) var<storage, read_write> bias: array<vec4f>;
// C is a storage buffer; where a later product reads it as a texture (W₁ for the next step's
// forward pass), placement copies the buffer into the texture after the dispatch
// (src/kernels/placement.ts). Padding columns are stored as computed: zero when the padding of the operands is zero.
// With SOFTMAX, the samples' labels (one u32 per row of C), for EPI_BIAS_SOFTMAX_CE.
// @if SOFTMAX
@group(0) @binding(8) var<storage, read> labels: array<u32>;
// @endif
const BIAS_NONE: u32 = 0u;
const BIAS_STORE: u32 = 1u;
const BIAS_SGD: u32 = 2u;

// @include random
// @include eta

// Apply the epilogue to four finished accumulators, columns j..j+3 of row i (j a multiple of 4),
// and store the first `n` of them (n < 4 only at the right edge of C). Every quad of C, aux and
// bias is 16-byte aligned (offsets, leading dimensions and block strides are multiples of 4), so
// the epilogue moves whole vec4s; a partial quad writes its components one by one. `col` is the
// column within the flattened row of C (z·cZ + j), which indexes bias vectors laid out like a row.
// `mv` holds η and 2λ of the model that owns the columns (modelValues), for EPI_SGD and
// EPI_GRAD_L2.
fn finish4(acc: vec4f, z: u32, i: u32, j: u32, n: u32, mv: vec2f) {
  let q = (p.cOff + z * p.cZ + i * p.ldc + j) / 4u;
  let col = z * p.cZ + j;
  var v = acc;
  if (EPI == EPI_BIAS) {
    v = acc + aux[(p.auxOff + col) / 4u];
  } else if (EPI == EPI_BIAS_RELU) {
    v = max(acc + aux[(p.auxOff + col) / 4u], vec4f(0.0));
  } else if (EPI == EPI_BIAS_RELU_DROP) {
    let model = modelOf(z, col);
    v = max(acc + aux[(p.auxOff + col) / 4u], vec4f(0.0)) * dropScaleOf(model);
    let at = i * p.ldc + col;
    let threshold = dropThresholdOf(model);
    for (var ue = 0u; ue < 4u; ue++) { // @unroll
      if (!dropKeep(p.dropSeed, st.step, p.dropLayer, at + ue, threshold)) { v[ue] = 0.0; }
    }
  } else if (EPI == EPI_RELU_MASK) {
    v = select(vec4f(0.0), acc * dropScaleOf(modelOf(z, col)), aux[p.auxOff / 4u + q] > vec4f(0.0));
  } else if (EPI == EPI_SGD) {
    let w = C[q];
    v = w - mv.x * (acc + mv.y * w);
  } else if (EPI == EPI_GRAD_L2) {
    v = acc + mv.y * aux[p.auxOff / 4u + q];
  }
  storeQuad(v, z, i, j, n);
}

// η (EPI_SGD) and 2λ (EPI_SGD, EPI_GRAD_L2) of the model that owns column `col` of C, for finish4:
// a tile computes them once per column quad, not once per quad, because modelOf divides (lane by
// lane on a CPU adapter) and each value is a load. The same values, so the same bits.
fn modelValues(z: u32, col: u32) -> vec2f {
  var mv = vec2f(0.0);
  if (EPI == EPI_SGD || EPI == EPI_GRAD_L2) {
    let model = modelOf(z, col);
    if (EPI == EPI_SGD) { mv.x = etaOf(model); }
    mv.y = 2.0 * lam[model * p.lamZ];
  }
  return mv;
}

// Dropout's threshold and scale 1/(1−p) for a model: the op's, or with a per-model table (a
// layer whose models drop with their own p) the model's own, read from lam.
fn dropThresholdOf(model: u32) -> u32 {
  if (p.dropTable == 0u) { return p.dropThreshold; }
  return bitcast<u32>(lam[p.dropTable + model]);
}
fn dropScaleOf(model: u32) -> f32 {
  if (p.dropTable == 0u) { return p.dropScale; }
  return lam[p.dropScales + model];
}

// The model that owns column `col` of C: batch entry z, or its block of lamCols columns.
fn modelOf(z: u32, col: u32) -> u32 {
  if (p.lamCols > 0u) { return col / p.lamCols; }
  return z;
}

// EPI_BIAS_SOFTMAX_CE: the output layer's scores S = acc + bias of whole rows (the tile spans
// every column: tilesN = 1, o.y = 0), turned into the loss gradient before they are stored, with
// the very operations of shaders/softmax_ce.wgsl in its order (so the result is the same to the
// bit): the row maximum m, Σ exp(s − m) from column 0 up, then (exp(s − m)·(1/Σ) − [c = y])·scale.
// Only the gradient is stored: the scores themselves are never written.
fn storeSoftmax(acc: array<array<vec4f, TN4>, TM>, z: u32, o: vec2u) {
  // @if SOFTMAX
  for (var ur = 0u; ur < TM; ur++) { // @unroll
    let i = o.x + ur;
    if (i < p.M) {
      var v: array<vec4f, TN4>;
      for (var uc = 0u; uc < TN4; uc++) { // @unroll
        v[uc] = acc[ur][uc] + aux[(p.auxOff + z * p.cZ + uc * 4u) / 4u];
      }
      var m = v[0].x;
      for (var uc = 0u; uc < TN4; uc++) { // @unroll
        for (var ue = 0u; ue < 4u; ue++) { // @unroll
          let c = uc * 4u + ue;
          if (c > 0u && c < p.N && v[uc][ue] > m) { m = v[uc][ue]; }
        }
      }
      var sum = 0.0;
      for (var uc = 0u; uc < TN4; uc++) { // @unroll
        for (var ue = 0u; ue < 4u; ue++) { // @unroll
          if (uc * 4u + ue < p.N) { sum += exp(v[uc][ue] - m); }
        }
      }
      let inv = 1.0 / sum;
      let y = labels[i];
      for (var uc = 0u; uc < TN4; uc++) { // @unroll
        let j = uc * 4u;
        if (j < p.N) {
          var g: vec4f;
          for (var ue = 0u; ue < 4u; ue++) { // @unroll
            let prob = exp(v[uc][ue] - m) * inv;
            g[ue] = (prob - select(0.0, 1.0, j + ue == y)) * p.scale;
          }
          storeQuad(g, z, i, j, p.N - j);
        }
      }
    }
  }
  // @endif
}

// Store the first n (≤ 4) values of quad v at columns j.. of row i of C.
fn storeQuad(v: vec4f, z: u32, i: u32, j: u32, n: u32) {
  let q = (p.cOff + z * p.cZ + i * p.ldc + j) / 4u;
  if (n >= 4u) {
    C[q] = v;
  } else {
    for (var ue = 0u; ue < 3u; ue++) { // @unroll
      if (ue < n) { C[q][ue] = v[ue]; }
    }
  }
}

fn tileOrigin(t: u32, rowsPerTile: u32) -> vec2u {
  return vec2u((t / p.tilesN) * rowsPerTile, (t % p.tilesN) * TN);
}

// Store a TM × TN tile of accumulators held as column quads, skipping entries outside C.
fn storeQuads(acc: array<array<vec4f, TN4>, TM>, z: u32, o: vec2u) {
  var mv: array<vec2f, TN4>;
  for (var uc = 0u; uc < TN4; uc++) { // @unroll
    mv[uc] = modelValues(z, z * p.cZ + min(o.y + uc * 4u, p.N - 1u));
  }
  for (var ur = 0u; ur < TM; ur++) { // @unroll
    let i = o.x + ur;
    if (i < p.M) {
      for (var uc = 0u; uc < TN4; uc++) { // @unroll
        let j = o.y + uc * 4u;
        if (j < p.N) { finish4(acc[ur][uc], z, i, j, p.N - j, mv[uc]); }
      }
    }
  }
}

@compute @workgroup_size(WG)
fn matmul_nn(@builtin(global_invocation_id) gid: vec3u) {
  if (gid.x >= p.tilesM * p.tilesN) { return; }
  let o = tileOrigin(gid.x, TM);
  let z = gid.z;
  let zq = bBase(z);
  let lastQuad = (p.N + 3u) / 4u - 1u;
  var rowA: array<u32, TM>;
  for (var ur = 0u; ur < TM; ur++) { // @unroll
    rowA[ur] = aRow(z, min(o.x + ur, p.M - 1u));
  }
  var colB: array<u32, TN4>;
  for (var uc = 0u; uc < TN4; uc++) { // @unroll
    colB[uc] = min(o.y / 4u + uc, lastQuad);
  }
  var acc: array<array<vec4f, TN4>, TM>;
  let K4 = (p.K + 3u) / 4u;
  for (var k4 = 0u; k4 < K4; k4++) {
    var a: array<vec4f, TM>;
    for (var ur = 0u; ur < TM; ur++) { // @unroll
      a[ur] = loadA(rowA[ur], k4);
    }
    var b: array<array<vec4f, TN4>, 4>;
    for (var uq = 0u; uq < 4u; uq++) { // @unroll
      let row = min(k4 * 4u + uq, p.K - 1u); // rows past K meet zero padding in A
      for (var uc = 0u; uc < TN4; uc++) { // @unroll
        b[uq][uc] = loadB(zq, row, colB[uc]);
      }
    }
    for (var ur = 0u; ur < TM; ur++) { // @unroll
      for (var uc = 0u; uc < TN4; uc++) { // @unroll
        var s = acc[ur][uc];
        s = fma(vec4f(a[ur].x), b[0][uc], s);
        s = fma(vec4f(a[ur].y), b[1][uc], s);
        s = fma(vec4f(a[ur].z), b[2][uc], s);
        s = fma(vec4f(a[ur].w), b[3][uc], s);
        acc[ur][uc] = s;
      }
    }
  }
  if (EPI == EPI_BIAS_SOFTMAX_CE) {
    storeSoftmax(acc, z, o);
  } else {
    storeQuads(acc, z, o);
  }
}

// @if TN_TILE
// One step k of matmul_tn(_split): the tile's accumulators gain row k of A (its TM columns, the
// tile's rows of C) times row k of B (its 4·TN4 columns), one vec4 FMA per row of C and column
// quad; with `sums`, the tile's bias sums gain row k of B.
fn tnStep(
  acc: ptr<function, array<array<vec4f, TN4>, TM>>,
  bsum: ptr<function, array<vec4f, TN4>>,
  sums: bool,
  rowK: u32,
  zq: u32,
  k: u32,
  colA: array<u32, TM4>,
  colB: array<u32, TN4>,
) {
  var a: array<vec4f, TM4>;
  for (var ur = 0u; ur < TM4; ur++) { // @unroll
    a[ur] = loadTileA(rowK, colA[ur], ur);
  }
  var b: array<vec4f, TN4>;
  for (var uc = 0u; uc < TN4; uc++) { // @unroll
    b[uc] = loadB(zq, k, colB[uc]);
  }
  if (sums) {
    for (var uc = 0u; uc < TN4; uc++) { // @unroll
      (*bsum)[uc] += b[uc];
    }
  }
  for (var ur = 0u; ur < TM4; ur++) { // @unroll
    for (var ue = 0u; ue < 4u; ue++) { // @unroll
      for (var uc = 0u; uc < TN4; uc++) { // @unroll
        (*acc)[ur * 4u + ue][uc] = fma(vec4f(a[ur][ue]), b[uc], (*acc)[ur * 4u + ue][uc]);
      }
    }
  }
}

// Four steps k0..k0+3 of matmul_tn at once, as matmul_nn takes a quad of K: the four rows of A
// (the tile's TM columns) and of B (its 4·TN4 columns) first, then each accumulator gains its four
// products in the order k0, k0+1, k0+2, k0+3 — the chain of fma of four tnSteps, so the same bits
// — read and written once instead of four times (llvmpipe keeps the TM·TN4 accumulators on the
// stack: a step of one FMA per accumulator paid a load and a store of it per FMA).
fn tnBlock(
  acc: ptr<function, array<array<vec4f, TN4>, TM>>,
  bsum: ptr<function, array<vec4f, TN4>>,
  sums: bool,
  z: u32,
  zq: u32,
  k0: u32,
  colA: array<u32, TM4>,
  colB: array<u32, TN4>,
) {
  var a: array<array<vec4f, TM4>, 4>;
  var b: array<array<vec4f, TN4>, 4>;
  for (var uq = 0u; uq < 4u; uq++) { // @unroll
    let rowK = aRow(z, k0 + uq);
    for (var ur = 0u; ur < TM4; ur++) { // @unroll
      a[uq][ur] = loadTileA(rowK, colA[ur], ur);
    }
    for (var uc = 0u; uc < TN4; uc++) { // @unroll
      b[uq][uc] = loadB(zq, k0 + uq, colB[uc]);
    }
  }
  if (sums) {
    for (var uq = 0u; uq < 4u; uq++) { // @unroll
      for (var uc = 0u; uc < TN4; uc++) { // @unroll
        (*bsum)[uc] += b[uq][uc];
      }
    }
  }
  for (var ur = 0u; ur < TM4; ur++) { // @unroll
    for (var ue = 0u; ue < 4u; ue++) { // @unroll
      for (var uc = 0u; uc < TN4; uc++) { // @unroll
        var s = (*acc)[ur * 4u + ue][uc];
        s = fma(vec4f(a[0][ur][ue]), b[0][uc], s);
        s = fma(vec4f(a[1][ur][ue]), b[1][uc], s);
        s = fma(vec4f(a[2][ur][ue]), b[2][uc], s);
        s = fma(vec4f(a[3][ur][ue]), b[3][uc], s);
        (*acc)[ur * 4u + ue][uc] = s;
      }
    }
  }
}

// Steps of K per iteration of matmul_tn's loop: K/TK_UNROLL blocks of tnBlock, then the K mod
// TK_UNROLL last steps one by one (tnStep). Layer 1's weight gradient on llvmpipe (2 cores,
// interleaved in one process, SGD epilogue, no copy): one model's 3072×52 (K = 100) 1.15 and 1.17
// ms with four tnSteps an iteration against 1.06 and 1.06 with tnBlock; 16 models' 3072×830 16.0
// against 14.6 ms. Four tnSteps an iteration had been 5–8 % faster than one.
const TK_UNROLL: u32 = 4u;

@compute @workgroup_size(WG)
fn matmul_tn(@builtin(global_invocation_id) gid: vec3u) {
  if (gid.x >= p.tilesM * p.tilesN) { return; }
  let o = tileOrigin(gid.x, TM);
  let z = gid.z;
  let zq = bBase(z);
  let lastQuadA = (p.M + 3u) / 4u - 1u;
  let lastQuadB = (p.N + 3u) / 4u - 1u;
  var colA: array<u32, TM4>;
  for (var ur = 0u; ur < TM4; ur++) { // @unroll
    colA[ur] = min(o.x / 4u + ur, lastQuadA);
  }
  setTileNorm(colA);
  var colB: array<u32, TN4>;
  for (var uc = 0u; uc < TN4; uc++) { // @unroll
    colB[uc] = min(o.y / 4u + uc, lastQuadB);
  }
  var acc: array<array<vec4f, TN4>, TM>;
  var bsum: array<vec4f, TN4>;
  let sums = BIAS != BIAS_NONE && o.x == 0u;
  let whole = p.K / TK_UNROLL;
  for (var kb = 0u; kb < whole; kb++) {
    tnBlock(&acc, &bsum, sums, z, zq, kb * TK_UNROLL, colA, colB);
  }
  for (var k = whole * TK_UNROLL; k < p.K; k++) {
    tnStep(&acc, &bsum, sums, aRow(z, k), zq, k, colA, colB);
  }
  storeQuads(acc, z, o);
  if (sums) { storeBiasSums(bsum, z, o); }
}
// @endif

// matmul_tn with BIAS, the first row of tiles: store (BIAS_STORE) or apply (BIAS_SGD) the column
// sums of B for the tile's columns o.y.., laid out like a row of C (the flattened z·cZ + j).
fn storeBiasSums(bsum: array<vec4f, TN4>, z: u32, o: vec2u) {
  for (var uc = 0u; uc < TN4; uc++) { // @unroll
    let j = o.y + uc * 4u;
    if (j < p.N) {
      let q = (z * p.cZ + j) / 4u;
      var v = bsum[uc];
      if (BIAS == BIAS_SGD) { v = bias[q] - etaOf(modelOf(z, z * p.cZ + j)) * v; }
      if (j + 4u <= p.N) {
        bias[q] = v;
      } else {
        for (var ue = 0u; ue < 3u; ue++) { // @unroll
          if (j + ue < p.N) { bias[q][ue] = v[ue]; }
        }
      }
    }
  }
}

@compute @workgroup_size(WG)
fn matmul_nt(@builtin(global_invocation_id) gid: vec3u) {
  if (gid.x >= p.tilesM * p.tilesN) { return; }
  let o = tileOrigin(gid.x, TM);
  let z = gid.z;
  let zq = bBase(z);
  var rowA: array<u32, TM>;
  for (var ur = 0u; ur < TM; ur++) { // @unroll
    rowA[ur] = aRow(z, min(o.x + ur, p.M - 1u));
  }
  var rowB: array<u32, TN>;
  for (var uc = 0u; uc < TN; uc++) { // @unroll
    rowB[uc] = min(o.y + uc, p.N - 1u);
  }
  var acc: array<array<vec4f, TN>, TM>; // per-lane partial dot products, summed at the end
  let K4 = (p.K + 3u) / 4u; // quads past K are zero padding in both operands
  for (var k4 = 0u; k4 < K4; k4++) {
    var a: array<vec4f, TM>;
    for (var ur = 0u; ur < TM; ur++) { // @unroll
      a[ur] = loadA(rowA[ur], k4);
    }
    var b: array<vec4f, TN>;
    for (var uc = 0u; uc < TN; uc++) { // @unroll
      b[uc] = loadB(zq, rowB[uc], k4);
    }
    for (var ur = 0u; ur < TM; ur++) { // @unroll
      for (var uc = 0u; uc < TN; uc++) { // @unroll
        acc[ur][uc] = fma(a[ur], b[uc], acc[ur][uc]);
      }
    }
  }
  for (var ur = 0u; ur < TM; ur++) { // @unroll
    let i = o.x + ur;
    if (i < p.M) {
      for (var uc = 0u; uc < TN4; uc++) { // @unroll
        let j = o.y + uc * 4u;
        if (j < p.N) {
          var quad: vec4f;
          for (var ue = 0u; ue < 4u; ue++) { // @unroll
            let s = acc[ur][uc * 4u + ue];
            quad[ue] = (s.x + s.y) + (s.z + s.w);
          }
          finish4(quad, z, i, j, p.N - j, modelValues(z, z * p.cZ + j));
        }
      }
    }
  }
}

// @if SPLIT
// ---- The `gpu` profile: K split inside the workgroup --------------------------------------------
// A workgroup of WG invocations computes TPW output tiles with KS invocations each (KS a power of
// two). Slice `slice` of a tile takes every KS-th step of its K loop (quads of K for nn and nt, rows
// for tn): k = s·KS + slice. Each slice keeps its partial TM×(4·TN4) tile in registers, then the
// slices of a tile sum their tiles in workgroup memory in log2(KS) rounds (each round halves the
// slices still adding), and slice 0 runs the very epilogues of the entry points above
// (storeQuads → finish4, storeSoftmax, storeBiasSums) once per output. No invocation returns early:
// every one reaches the barriers, those past the last tile with clamped loads and no stores.
// The sums come out in another order than the cpu profile's (the same to float32 rounding).
const KS: u32 = 1u; // invocations (K slices) per output tile, a power of two dividing WG
const TPW: u32 = WG / KS; // output tiles per workgroup
const TMN: u32 = TM * TN4; // vec4 accumulators per tile

// One partial tile per invocation: WG·TM·TN4 vec4 (≤ 16 KiB, the smallest limit WebGPU allows).
var<workgroup> red: array<vec4f, WG * TMN>;

// Sum the partial tiles of the KS slices of a tile into slice 0's `acc`. `li` is the invocation's
// index in the workgroup, `stride` the distance between consecutive slices of one tile. In round s
// slices below s add the tile of slice + s; a slice reads only slots no one writes that round.
fn reduceTile(acc: ptr<function, array<array<vec4f, TN4>, TM>>, li: u32, slice: u32, stride: u32) {
  if (KS > 1u) {
    for (var ur = 0u; ur < TM; ur++) { // @unroll
      for (var uc = 0u; uc < TN4; uc++) { // @unroll
        red[li * TMN + ur * TN4 + uc] = (*acc)[ur][uc];
      }
    }
    for (var s = KS / 2u; s > 0u; s /= 2u) {
      workgroupBarrier();
      if (slice < s) {
        let other = (li + s * stride) * TMN;
        for (var ur = 0u; ur < TM; ur++) { // @unroll
          for (var uc = 0u; uc < TN4; uc++) { // @unroll
            let v = (*acc)[ur][uc] + red[other + ur * TN4 + uc];
            (*acc)[ur][uc] = v;
            red[li * TMN + ur * TN4 + uc] = v;
          }
        }
      }
    }
    workgroupBarrier(); // `red` may be reused
  }
}

// The same for one row of TN4 quads (matmul_tn's bias sums), in the first TN4 slots of each tile.
fn reduceRow(row: ptr<function, array<vec4f, TN4>>, li: u32, slice: u32, stride: u32) {
  if (KS > 1u) {
    for (var uc = 0u; uc < TN4; uc++) { // @unroll
      red[li * TMN + uc] = (*row)[uc];
    }
    for (var s = KS / 2u; s > 0u; s /= 2u) {
      workgroupBarrier();
      if (slice < s) {
        let other = (li + s * stride) * TMN;
        for (var uc = 0u; uc < TN4; uc++) { // @unroll
          let v = (*row)[uc] + red[other + uc];
          (*row)[uc] = v;
          red[li * TMN + uc] = v;
        }
      }
    }
    workgroupBarrier();
  }
}

// nn and nt: the slices of a tile are neighbours (li = tile·KS + slice), so that neighbouring
// invocations read neighbouring quads along K, the contiguous dimension of A (and of B for nt).
@compute @workgroup_size(WG)
fn matmul_nn_split(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
  let slice = li % KS;
  let o = tileOrigin(wid.x * TPW + li / KS, TM);
  let z = wid.z;
  let zq = bBase(z);
  let lastQuad = (p.N + 3u) / 4u - 1u;
  var rowA: array<u32, TM>;
  for (var ur = 0u; ur < TM; ur++) { // @unroll
    rowA[ur] = aRow(z, min(o.x + ur, p.M - 1u));
  }
  var colB: array<u32, TN4>;
  for (var uc = 0u; uc < TN4; uc++) { // @unroll
    colB[uc] = min(o.y / 4u + uc, lastQuad);
  }
  var acc: array<array<vec4f, TN4>, TM>;
  let K4 = (p.K + 3u) / 4u;
  let steps = (K4 + KS - 1u) / KS; // the same for every invocation: the barriers stay uniform
  for (var s = 0u; s < steps; s++) {
    let k4 = s * KS + slice;
    if (k4 < K4) {
      var a: array<vec4f, TM>;
      for (var ur = 0u; ur < TM; ur++) { // @unroll
        a[ur] = loadA(rowA[ur], k4);
      }
      var b: array<array<vec4f, TN4>, 4>;
      for (var uq = 0u; uq < 4u; uq++) { // @unroll
        let row = min(k4 * 4u + uq, p.K - 1u); // rows past K meet zero padding in A
        for (var uc = 0u; uc < TN4; uc++) { // @unroll
          b[uq][uc] = loadB(zq, row, colB[uc]);
        }
      }
      for (var ur = 0u; ur < TM; ur++) { // @unroll
        for (var uc = 0u; uc < TN4; uc++) { // @unroll
          var t = acc[ur][uc];
          t = fma(vec4f(a[ur].x), b[0][uc], t);
          t = fma(vec4f(a[ur].y), b[1][uc], t);
          t = fma(vec4f(a[ur].z), b[2][uc], t);
          t = fma(vec4f(a[ur].w), b[3][uc], t);
          acc[ur][uc] = t;
        }
      }
    }
  }
  reduceTile(&acc, li, slice, 1u);
  if (slice == 0u) {
    if (EPI == EPI_BIAS_SOFTMAX_CE) {
      storeSoftmax(acc, z, o);
    } else {
      storeQuads(acc, z, o);
    }
  }
}

// @if TN_TILE
// tn: the tiles of a workgroup are neighbours (li = slice·TPW + tile): along K (rows of both
// operands) the contiguous dimension is M for A and N for B, which neighbouring tiles share.
@compute @workgroup_size(WG)
fn matmul_tn_split(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
  let slice = li / TPW;
  let o = tileOrigin(wid.x * TPW + li % TPW, TM);
  let z = wid.z;
  let zq = bBase(z);
  let lastQuadA = (p.M + 3u) / 4u - 1u;
  let lastQuadB = (p.N + 3u) / 4u - 1u;
  var colA: array<u32, TM4>;
  for (var ur = 0u; ur < TM4; ur++) { // @unroll
    colA[ur] = min(o.x / 4u + ur, lastQuadA);
  }
  setTileNorm(colA);
  var colB: array<u32, TN4>;
  for (var uc = 0u; uc < TN4; uc++) { // @unroll
    colB[uc] = min(o.y / 4u + uc, lastQuadB);
  }
  var acc: array<array<vec4f, TN4>, TM>;
  var bsum: array<vec4f, TN4>;
  let sums = BIAS != BIAS_NONE && o.x == 0u;
  let steps = (p.K + KS - 1u) / KS;
  for (var s = 0u; s < steps; s++) {
    let k = s * KS + slice;
    if (k < p.K) { tnStep(&acc, &bsum, sums, aRow(z, k), zq, k, colA, colB); }
  }
  reduceTile(&acc, li, slice, TPW);
  if (BIAS != BIAS_NONE) { reduceRow(&bsum, li, slice, TPW); }
  if (slice == 0u) {
    storeQuads(acc, z, o);
    if (sums) { storeBiasSums(bsum, z, o); }
  }
}
// @endif

@compute @workgroup_size(WG)
fn matmul_nt_split(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
  let slice = li % KS;
  let o = tileOrigin(wid.x * TPW + li / KS, TM);
  let z = wid.z;
  let zq = bBase(z);
  var rowA: array<u32, TM>;
  for (var ur = 0u; ur < TM; ur++) { // @unroll
    rowA[ur] = aRow(z, min(o.x + ur, p.M - 1u));
  }
  var rowB: array<u32, TN>;
  for (var uc = 0u; uc < TN; uc++) { // @unroll
    rowB[uc] = min(o.y + uc, p.N - 1u);
  }
  var lanes: array<array<vec4f, TN>, TM>; // per-lane partial dot products of this slice
  let K4 = (p.K + 3u) / 4u; // quads past K are zero padding in both operands
  let steps = (K4 + KS - 1u) / KS;
  for (var s = 0u; s < steps; s++) {
    let k4 = s * KS + slice;
    if (k4 < K4) {
      var a: array<vec4f, TM>;
      for (var ur = 0u; ur < TM; ur++) { // @unroll
        a[ur] = loadA(rowA[ur], k4);
      }
      var b: array<vec4f, TN>;
      for (var uc = 0u; uc < TN; uc++) { // @unroll
        b[uc] = loadB(zq, rowB[uc], k4);
      }
      for (var ur = 0u; ur < TM; ur++) { // @unroll
        for (var uc = 0u; uc < TN; uc++) { // @unroll
          lanes[ur][uc] = fma(a[ur], b[uc], lanes[ur][uc]);
        }
      }
    }
  }
  // each lane vector summed to its dot product before the reduction: TM×TN4 quads, as nn's tile
  var acc: array<array<vec4f, TN4>, TM>;
  for (var ur = 0u; ur < TM; ur++) { // @unroll
    for (var uc = 0u; uc < TN4; uc++) { // @unroll
      for (var ue = 0u; ue < 4u; ue++) { // @unroll
        let l = lanes[ur][uc * 4u + ue];
        acc[ur][uc][ue] = (l.x + l.y) + (l.z + l.w);
      }
    }
  }
  reduceTile(&acc, li, slice, 1u);
  if (slice == 0u) { storeQuads(acc, z, o); }
}
// @endif
