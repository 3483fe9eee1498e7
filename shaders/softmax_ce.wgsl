// Softmax + cross-entropy, fused, one invocation per (sample row, model z).
// Scores S(z) are R × C blocks laid out side by side (element (z, i, c) at i·ld + z·zStride + c).
//   TRAIN: overwrite the scores with the loss gradient  G = (softmax(S) − onehot(y)) · scale,
//          scale = 1/B, so the backward pass starts from G directly.
//   EVAL:  write stats[(i·Z + z)] = (loss_i, correct_i, predicted class, 0); scores untouched.
// loss_i = logsumexp(S_i) − S_i[y_i], computed with the row maximum subtracted.

const TRAIN: bool = true;
const WG: u32 = 64u;

struct Params { R: u32, Z: u32, C: u32, ld: u32, zStride: u32, scale: f32, _a: u32, _b: u32 }
// @include step

@group(0) @binding(0) var<storage, read_write> S: array<f32>;
@group(0) @binding(1) var<storage, read> labels: array<u32>;
@group(0) @binding(2) var<storage, read_write> stats: array<vec4f>;
@group(0) @binding(3) var<uniform> p: Params;
@group(0) @binding(4) var<uniform> st: Step;

@compute @workgroup_size(WG)
fn softmax_ce(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  let z = gid.y;
  if (i >= p.R || z >= p.Z) { return; }
  let base = i * p.ld + z * p.zStride;
  let y = labels[i];
  var m = S[base];
  var arg = 0u;
  for (var c = 1u; c < p.C; c++) {
    let s = S[base + c];
    if (s > m) { m = s; arg = c; }
  }
  var sum = 0.0;
  for (var c = 0u; c < p.C; c++) { sum += exp(S[base + c] - m); }
  if (TRAIN) {
    let inv = 1.0 / sum;
    for (var c = 0u; c < p.C; c++) {
      let prob = exp(S[base + c] - m) * inv;
      S[base + c] = (prob - select(0.0, 1.0, c == y)) * p.scale;
    }
  } else {
    let loss = log(sum) + m - S[base + min(y, p.C - 1u)];
    stats[i * p.Z + z] = vec4f(loss, select(0.0, 1.0, arg == y), f32(arg), 0.0);
  }
}
