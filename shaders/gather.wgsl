// Batch gather: build the normalised input rows X (R × 3072) and labels y of a mini-batch from
// the u8 dataset resident on the GPU. A workgroup of WG invocations fills one row, each invocation
// WORDS/WG words of 4 pixels, so the row's sample index is computed WG times rather than 768.
//   TRAIN: row r of the batch is sample  perm_epoch(pos + r)  of the split, where perm_epoch is
//          a keyed Feistel permutation of [0, n) (cycle-walking), re-keyed every epoch: a fresh
//          shuffle per epoch with no index buffer and no CPU work.
//   EVAL:  row r is sample  base + r  of the split; rows ≥ `rows` are left untouched.
// X = (pixel − mean) · invStd per dimension. The dataset is split over two buffers because one
// storage binding holds at most 128 MiB on some adapters: images [0, n0) in data0, the rest in data1.

const TRAIN: bool = true;
const WG: u32 = 64u;
const WORDS: u32 = 768u; // u32 words (4 pixels each) per 3072-byte image
const PER: u32 = WORDS / WG; // words per invocation

struct Params {
  n0: u32, // images in data0
  splitBase: u32, // index of the split's first image in the dataset
  splitN: u32, // images in the split
  R: u32, // rows to write
  key: u32, // seed of the shuffle
  halfBits: u32, // Feistel half width: 4^halfBits ≥ splitN
  _a: u32,
  _b: u32,
}
struct Step { step: u32, epoch: u32, pos: u32, eta: f32, base: u32, rows: u32, slot: u32, flags: u32 }

@group(0) @binding(0) var<storage, read> data0: array<u32>;
@group(0) @binding(1) var<storage, read> data1: array<u32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read> norm: array<vec4f>; // WORDS means, then WORDS 1/std
@group(0) @binding(4) var<storage, read_write> X: array<vec4f>;
@group(0) @binding(5) var<storage, read_write> y: array<u32>;
@group(0) @binding(6) var<uniform> p: Params;
@group(0) @binding(7) var<uniform> st: Step;

// @include random

// Four-round Feistel network on 2·halfBits bits: a bijection of [0, 4^halfBits).
fn feistel(x: u32, key: u32, halfBits: u32) -> u32 {
  let mask = (1u << halfBits) - 1u;
  var l = x >> halfBits;
  var r = x & mask;
  for (var round = 0u; round < 4u; round++) {
    let f = hash(r ^ hash(key + round)) & mask;
    let t = l ^ f;
    l = r;
    r = t;
  }
  return (l << halfBits) | r;
}

// Permutation of [0, n): walk the Feistel cycle until it lands inside the range.
fn permute(i: u32, n: u32, key: u32, halfBits: u32) -> u32 {
  var x = feistel(i, key, halfBits);
  while (x >= n) { x = feistel(x, key, halfBits); }
  return x;
}

fn epochKey(seed: u32, epoch: u32) -> u32 {
  return hash(seed ^ hash(epoch * 0x9e3779b9u + 1u));
}

@compute @workgroup_size(WG)
fn gather(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let r = wid.x;
  if (r >= p.R) { return; }
  var sample: u32;
  if (TRAIN) {
    sample = permute(st.pos + r, p.splitN, epochKey(p.key, st.epoch), p.halfBits);
  } else {
    if (r >= st.rows) { return; }
    sample = st.base + r;
  }
  let img = p.splitBase + sample;
  for (var uk = 0u; uk < PER; uk++) { // @unroll
    let w = lid.x + uk * WG;
    var word: u32;
    if (img < p.n0) {
      word = data0[img * WORDS + w];
    } else {
      word = data1[(img - p.n0) * WORDS + w];
    }
    let px = vec4f(f32(word & 0xffu), f32((word >> 8u) & 0xffu), f32((word >> 16u) & 0xffu), f32(word >> 24u));
    X[r * WORDS + w] = (px - norm[w]) * norm[WORDS + w];
  }
  if (lid.x == 0u) { y[r] = labels[img]; }
}
