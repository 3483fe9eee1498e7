// Elementwise parameter updates over the first n floats of a parameter buffer θ, reading the
// gradient g from a separate buffer (g already holds any L2 term; none is added here):
//   sgd:  θ -= η·g
//   adam: m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²
//         θ -= η · (m / c1) / (√(v / c2) + ε),   c_k = 1 − β_k^t
// with t = st.step + 1 and η the learning rate of the element's model (etaOf in eta.wgsl: element i
// of a parameter laid out in rows of ld floats, models' blocks pout floats apart, belongs to model
// (i mod ld) / pout). Padding entries (θ = g = 0, m = v = 0)
// stay exactly zero under both rules.
//
// The bias corrections c_k are computed as −expm1(t·ln β_k), with ln β_k evaluated in float64 by
// the wrapper: forming β^t first and subtracting it from 1 loses most digits for small t (at
// β2 = 0.999, t = 1, an f32 β^t near 1 is only good to ~1e-7 absolute, 1e-4 relative in c2), and
// pow(β, t) = exp2(t·log2 β) inherits log2's absolute error near 1 besides. expm1 is a
// degree-12 Taylor polynomial for |x| < 1 and exp(x) − 1 beyond, good to a few ulp throughout;
// large t (~1e5 and more) simply sends β^t to 0 and c_k to 1.
//
// Grid: workgroups of WG invocations, each invocation PER elements strided by WG (coalesced),
// workgroups numbered row-major over a 2-D grid of p.rowGroups columns, so that no dimension
// exceeds 65535 however large n is. Specialised per use (src/kernels/update.ts): WG, PER.

const WG: u32 = 256u; // invocations per workgroup
const PER: u32 = 4u; // elements per invocation

struct Params {
  n: u32, // floats to update
  rowGroups: u32, // workgroups per grid row (the x dimension of the dispatch)
  beta1: f32,
  beta2: f32,
  eps: f32,
  lnBeta1: f32, // ln β1 (float64 in the wrapper, clamped to ≥ −100 so that β1 = 0 works)
  lnBeta2: f32,
  ld: u32, // row stride of the parameter (its layer's P·pout), for the model of an element
  pout: u32, // columns of one model's block (0: one model)
  _a: u32,
  _b: u32,
  _c: u32,
}
// @include step

@group(0) @binding(0) var<storage, read_write> theta: array<f32>;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> m: array<f32>; // unused by sgd
@group(0) @binding(3) var<storage, read_write> v: array<f32>; // unused by sgd
@group(0) @binding(4) var<uniform> p: Params;
@group(0) @binding(5) var<uniform> st: Step;
@group(0) @binding(6) var<storage, read> lam: array<f32>; // per-model values: η (see eta.wgsl)

// @include eta

// the model that owns element i of the parameter
fn modelAt(i: u32) -> u32 {
  if (p.pout == 0u) { return 0u; }
  return (i % p.ld) / p.pout;
}

// First element of this invocation: workgroup (x, y) of the grid covers WG·PER elements.
fn firstIndex(wid: vec3u, lid: vec3u) -> u32 {
  return (wid.y * p.rowGroups + wid.x) * (WG * PER) + lid.x;
}

// e^x − 1 for x ≤ 0, accurate relative to the result even for tiny |x|.
fn expm1(x: f32) -> f32 {
  if (x > -1.0) {
    var s = 1.0 / 479001600.0; // 1/12!
    s = fma(s, x, 1.0 / 39916800.0);
    s = fma(s, x, 1.0 / 3628800.0);
    s = fma(s, x, 1.0 / 362880.0);
    s = fma(s, x, 1.0 / 40320.0);
    s = fma(s, x, 1.0 / 5040.0);
    s = fma(s, x, 1.0 / 720.0);
    s = fma(s, x, 1.0 / 120.0);
    s = fma(s, x, 1.0 / 24.0);
    s = fma(s, x, 1.0 / 6.0);
    s = fma(s, x, 0.5);
    s = fma(s, x, 1.0);
    return s * x;
  }
  return exp(x) - 1.0;
}

@compute @workgroup_size(WG)
fn sgd(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let first = firstIndex(wid, lid);
  for (var k = 0u; k < PER; k++) { // @unroll
    let i = first + k * WG;
    if (i < p.n) {
      theta[i] = theta[i] - etaOf(modelAt(i)) * grad[i];
    }
  }
}

@compute @workgroup_size(WG)
fn adam(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let first = firstIndex(wid, lid);
  let t = f32(st.step + 1u);
  let c1 = -expm1(t * p.lnBeta1); // 1 − β1^t
  let c2 = -expm1(t * p.lnBeta2); // 1 − β2^t
  let b1 = p.beta1;
  let b2 = p.beta2;
  let a1 = 1.0 - b1;
  let a2 = 1.0 - b2;
  for (var k = 0u; k < PER; k++) { // @unroll
    let i = first + k * WG;
    if (i < p.n) {
      let g = grad[i];
      let mi = b1 * m[i] + a1 * g;
      let vi = b2 * v[i] + a2 * (g * g);
      m[i] = mi;
      v[i] = vi;
      theta[i] = theta[i] - etaOf(modelAt(i)) * (mi / c1) / (sqrt(vi / c2) + p.eps);
    }
  }
}
