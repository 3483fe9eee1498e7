// Copy models' blocks within a population's state buffer (population-based training's exploit):
// the buffer is laid out like its layer's parameters (src/model/gpu_params.ts), `rows` rows of
// `ld` floats with model m's block of `pout` floats at column m·pout. Each invocation writes one
// float of one row: dst[i·ld + m·pout + j] = src[i·ld + origin[m]·pout + j], for every model m of
// the P (origin[m] = m for a model that keeps its own state), j < pout, i < rows. `src` is a copy
// of `dst` taken just before (a kernel cannot bind one buffer as both), so a model may copy one
// that is itself overwritten in the same dispatch. Columns past P·pout (padding) are not touched.

const WG: u32 = 64u;

struct Params { rows: u32, ld: u32, pout: u32, P: u32 }
// @include step

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<storage, read> origin: array<u32>;
@group(0) @binding(3) var<uniform> p: Params;
@group(0) @binding(4) var<uniform> st: Step;

@compute @workgroup_size(WG)
fn copy_blocks(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  let i = gid.y;
  if (c >= p.P * p.pout || i >= p.rows) { return; }
  let m = c / p.pout;
  let j = c - m * p.pout;
  dst[i * p.ld + c] = src[i * p.ld + origin[m] * p.pout + j];
}
