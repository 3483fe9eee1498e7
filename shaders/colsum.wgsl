// Column sums of a gradient block: the bias gradient db = Σ_i G[i, :], one invocation per
// logical column of every model, with an optional fused SGD update of the bias.
//   STORE: out[col] = Σ_i G[i, col]
//   SGD:   out[col] -= eta · Σ_i G[i, col]        (biases carry no L2 term)
// Columns are numbered over the Z blocks of width N (logical) at stride zStride.

const SGD: bool = false;
const WG: u32 = 64u;

struct Params { R: u32, N: u32, Z: u32, ld: u32, zStride: u32, outOff: u32, _a: u32, _b: u32 }
struct Step { step: u32, epoch: u32, pos: u32, eta: f32, base: u32, rows: u32, slot: u32, flags: u32 }

@group(0) @binding(0) var<storage, read> G: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
@group(0) @binding(3) var<uniform> st: Step;

@compute @workgroup_size(WG)
fn colsum(@builtin(global_invocation_id) gid: vec3u) {
  let t = gid.x;
  if (t >= p.N * p.Z) { return; }
  let col = (t / p.N) * p.zStride + t % p.N;
  var s = 0.0;
  for (var i = 0u; i < p.R; i++) { s += G[i * p.ld + col]; }
  let o = p.outOff + col;
  if (SGD) {
    out[o] = out[o] - st.eta * s;
  } else {
    out[o] = s;
  }
}
