// Metric reductions for evaluation, all deterministic (fixed order: strided per-thread sums, then
// a tree in workgroup memory), one workgroup per model z.
//   reduce_rows:  metrics[slot·Z + z] += (Σ loss, Σ correct, 0, rows) over the chunk's valid rows
//                 of the per-row stats that softmax_ce wrote.
//   sum_squares:  metrics[slot·Z + z].z += Σ W² over model z's logical n_in × n_out block.
//   confusion:    counts[(z·C + y)·C + predicted] += 1 for the chunk's valid rows.
// The metrics slot and the chunk's valid row count come from the step record.

const WG: u32 = 256u;

struct Params { R: u32, Z: u32, rowsW: u32, colsW: u32, ld: u32, zStride: u32, C: u32, _a: u32 }
// @include step

@group(0) @binding(0) var<storage, read> stats: array<vec4f>;
@group(0) @binding(1) var<storage, read> labels: array<u32>;
@group(0) @binding(2) var<storage, read> W: array<f32>;
@group(0) @binding(3) var<storage, read_write> metrics: array<vec4f>;
@group(0) @binding(4) var<storage, read_write> counts: array<atomic<u32>>;
@group(0) @binding(5) var<uniform> p: Params;
@group(0) @binding(6) var<uniform> st: Step;

var<workgroup> part: array<vec2f, WG>;

fn treeSum(t: u32) {
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    workgroupBarrier();
    if (t < s) { part[t] += part[t + s]; }
  }
  workgroupBarrier();
}

@compute @workgroup_size(WG)
fn reduce_rows(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let t = lid.x;
  let z = wid.x;
  let rows = min(st.rows, p.R);
  var acc = vec2f(0.0);
  for (var i = t; i < rows; i += WG) { acc += stats[i * p.Z + z].xy; }
  part[t] = acc;
  treeSum(t);
  if (t == 0u) {
    let m = st.slot * p.Z + z;
    metrics[m] += vec4f(part[0].x, part[0].y, 0.0, f32(rows));
  }
}

@compute @workgroup_size(WG)
fn sum_squares(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let t = lid.x;
  let z = wid.x;
  let n = p.rowsW * p.colsW;
  var acc = 0.0;
  for (var e = t; e < n; e += WG) {
    let w = W[(e / p.colsW) * p.ld + z * p.zStride + e % p.colsW];
    acc += w * w;
  }
  part[t] = vec2f(acc, 0.0);
  treeSum(t);
  if (t == 0u) {
    let m = st.slot * p.Z + z;
    metrics[m].z += part[0].x;
  }
}

@compute @workgroup_size(WG)
fn confusion(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let z = wid.x;
  let rows = min(st.rows, p.R);
  for (var i = lid.x; i < rows; i += WG) {
    let y = labels[i];
    let pred = u32(stats[i * p.Z + z].z);
    atomicAdd(&counts[(z * p.C + y) * p.C + pred], 1u);
  }
}
