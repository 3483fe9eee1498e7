// Bench-only probes of what the adapter can do (bench/probes.ts): the FMA ceiling and the cost of
// one vec4 load from a texture (sampled or as a read-only storage texture), a storage buffer,
// workgroup memory and a uniform buffer. No
// training kernel uses this file. Every probe writes one vec4 per invocation to `out`, which the
// bench checks against the CPU (bench/probes.ts: fmaExpected, loadExpected), so the work cannot be
// dropped.
//
// fma_peak: NACC independent vec4 accumulators per invocation, each updated REP times per loop
//   iteration by acc = fma(acc, m, c) with m and c from the uniform (unknown to the compiler).
//   FLOPs = invocations · iters · REP · NACC · 4 lanes · 2, exactly; nothing else in the loop.
//   The bench passes m = 1 and c = 2⁻¹⁰, so every step is exact in f32 (fused or not) and the
//   result is base + iters·REP·c per lane: the check sees every iteration.
// load_probe: per loop iteration one hash of (loop counter, invocation, seed), then CH loads at
//   idx_c = (h + c·4099) & mask, each added into its own vec4 accumulator. The addresses depend
//   on the loop counter through a hash (not affine), so no load can be hoisted out of the loop or
//   merged with another; the accumulators keep every loaded value live.
//   Loads = invocations · iters · CH (vec4 each); adds = 4 per load; integer work per iteration:
//   the hash (2 multiplies, 2 shifts, 2 xors, 2 xors of the inputs) and per load 1 add, 1 and.
//   LOAD = false is the baseline twin: the same hash, addresses and adds, the value converted
//   from the index instead of loaded; load cost = time(LOAD) − time(baseline).
//   MEM selects where the loads go: 0 storage buffer `src` (mask + 1 vec4), 1 rgba32float texture
//   `tex` (TEX_W texels per row, texel idx at (idx % TEX_W, idx / TEX_W)), 2 workgroup memory
//   (WG_N vec4, filled from src[0..WG_N) before the loop: WG_N / WG buffer loads and workgroup
//   stores per invocation, in the baseline as well), 3 uniform buffer `ub` (UB_N vec4, 64 KiB:
//   the first UB_N of src; compiled in with UBO, since WebGPU allows 64 KiB uniform bindings),
//   4 the texture `tex` bound again as a read-only storage texture `stx` (compiled in with STX,
//   where WGSL has readonly_and_readwrite_storage_textures).

const WG: u32 = 64u; // invocations per workgroup
const NACC: u32 = 16u; // fma_peak: independent vec4 accumulators per invocation
const REP: u32 = 4u; // fma_peak: rounds over the accumulators per loop iteration
const CH: u32 = 4u; // load_probe: loads (independent accumulators) per loop iteration
const MEM: u32 = 0u; // load_probe: 0 buffer, 1 texture, 2 workgroup memory, 3 uniform buffer,
// 4 the texture bound as a read-only storage texture
const LOAD: bool = true; // load_probe: false = the baseline twin without loads
const TEX_W: u32 = 128u; // texels per texture row
const WG_N: u32 = 512u; // vec4 in workgroup memory (8 KiB)
const UB_N: u32 = 4096u; // vec4 in the uniform buffer (64 KiB)
const UBO: bool = false; // MEM 3: the uniform buffer is bound
const STX: bool = false; // MEM 4: the storage texture is bound

struct Params { iters: u32, mask: u32, seed: u32, _p0: u32, m: f32, c: f32, _p1: u32, _p2: u32 }
// @include step

@group(0) @binding(0) var<storage, read> src: array<vec4f>;
@group(0) @binding(1) var tex: texture_2d<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4f>;
@group(0) @binding(3) var<uniform> p: Params;
@group(0) @binding(4) var<uniform> st: Step;
// @if UBO
@group(0) @binding(5) var<uniform> ub: array<vec4f, UB_N>;
fn fetchUniform(idx: u32) -> vec4f { return ub[idx]; }
// @else
fn fetchUniform(idx: u32) -> vec4f { return vec4f(0.0); }
// @endif
// @if STX
@group(0) @binding(6) var stx: texture_storage_2d<rgba32float, read>;
fn fetchStorage(idx: u32) -> vec4f { return textureLoad(stx, vec2u(idx % TEX_W, idx / TEX_W)); }
// @else
fn fetchStorage(idx: u32) -> vec4f { return vec4f(0.0); }
// @endif

var<workgroup> wgm: array<vec4f, WG_N>;

@compute @workgroup_size(WG)
fn fma_peak(@builtin(global_invocation_id) gid: vec3u) {
  let g = gid.x;
  let m = vec4f(p.m);
  let c = vec4f(p.c, 2.0 * p.c, 0.5 * p.c, 4.0 * p.c);
  let base = f32(g & 15u);
  var acc: array<vec4f, NACC>;
  for (var a = 0u; a < NACC; a++) { // @unroll
    acc[a] = vec4f(base + f32(a));
  }
  for (var i = 0u; i < p.iters; i++) {
    for (var r = 0u; r < REP; r++) { // @unroll
      for (var a = 0u; a < NACC; a++) { // @unroll
        acc[a] = fma(acc[a], m, c);
      }
    }
  }
  var s = vec4f(0.0);
  for (var a = 0u; a < NACC; a++) { // @unroll
    s = s + acc[a];
  }
  out[g] = s;
}

// The probe's hash of the loop counter, the invocation and the seed (bench/probes.ts: probeHash).
fn probeHash(i: u32, g: u32, seed: u32) -> u32 {
  var h = (i ^ seed) * 0x9E3779B1u ^ g;
  h = (h ^ (h >> 16u)) * 0x85EBCA6Bu;
  return h ^ (h >> 13u);
}

fn fetch(idx: u32) -> vec4f {
  if (!LOAD) { return vec4f(f32(idx & 255u)); }
  if (MEM == 1u) { return textureLoad(tex, vec2u(idx % TEX_W, idx / TEX_W), 0); }
  if (MEM == 2u) { return wgm[idx]; }
  if (MEM == 3u) { return fetchUniform(idx); }
  if (MEM == 4u) { return fetchStorage(idx); }
  return src[idx];
}

@compute @workgroup_size(WG)
fn load_probe(
  @builtin(global_invocation_id) gid: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  if (MEM == 2u) {
    for (var j = lid; j < WG_N; j += WG) { wgm[j] = src[j]; }
    workgroupBarrier();
  }
  let g = gid.x;
  var acc: array<vec4f, CH>;
  for (var c = 0u; c < CH; c++) { // @unroll
    acc[c] = vec4f(0.0, 1.0, 2.0, 3.0);
  }
  for (var i = 0u; i < p.iters; i++) {
    let h = probeHash(i, g, p.seed);
    for (var c = 0u; c < CH; c++) { // @unroll
      acc[c] = acc[c] + fetch((h + c * 4099u) & p.mask);
    }
  }
  var s = vec4f(0.0);
  for (var c = 0u; c < CH; c++) { // @unroll
    s = s + acc[c];
  }
  out[g] = s;
}
