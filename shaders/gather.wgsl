// Batch gather: build the normalised input rows X (R × 3072) and labels y of a mini-batch from
// the u8 dataset resident on the GPU. A workgroup of WG invocations fills one row, each invocation
// loading VECS/WG 16-byte vectors of 16 pixels (augmented: WORDS/WG words of 4), so the row's
// sample index is computed WG times rather than 768. Loads of 16 bytes rather than 4, 192
// invocations a row rather than 64, and the normalisation table in a texture took a 100-row
// batch from 0.85 to 0.55 ms on llvmpipe (50 000 images resident).
//   TRAIN: row r of the batch is sample  perm_epoch(pos + r)  of the split, where perm_epoch is
//          a keyed Feistel permutation of [0, n) (cycle-walking), re-keyed every epoch: a fresh
//          shuffle per epoch with no index buffer and no CPU work.
//   EVAL:  row r is sample  base + r  of the split; rows ≥ `rows` are left untouched.
// X = (pixel − mean) · invStd per dimension. The dataset is split over two buffers because one
// storage binding holds at most 128 MiB on some adapters: images [0, n0) in data0, the rest in data1.
//
// Augmentation (TRAIN only, compiled in when AUGMENT): each sample is mirrored left-right with
// probability 1/2 (p.flip ≠ 0) and shifted by integers dx, dy uniform in [−T, T] (T = p.shift),
// decided per (seed, epoch, sample index in the split) by one hash, the same for the whole row:
//   h    = random3(key, epoch, AUG_STREAM, sample)
//   flip = p.flip ≠ 0 and bit 31 of h is set
//   dx   = ((h >> 16) & 0x7fff) mod (2T+1) − T,   dy = (h & 0xffff) mod (2T+1) − T
// Output pixel (c, y, x) takes source pixel (c, y − dy, sx) with tx = x − dx and
// sx = flip ? 31 − tx : tx (mirror, then shift: content moves right by dx and down by dy); pixels
// whose source lies outside the image get the mean, i.e. normalised value 0. The twin is
// augmentParams / augmentImage in src/reference/gather.ts.

const TRAIN: bool = true;
const X_TEXTURE: bool = false; // write X into a texture instead of a buffer
const NORM_STORAGE: bool = false; // norm bound as a read-only storage texture (else sampled)
const AUGMENT: bool = false;
const AUG_STREAM: u32 = 0x61756721u; // random3 stream of the augmentation decisions ("aug!")
const WG: u32 = 192u;
const WORDS: u32 = 768u; // u32 words (4 pixels each) per 3072-byte image
const PER: u32 = WORDS / WG; // words per invocation (augmented path)
const VECS: u32 = WORDS / 4u; // 16-byte vectors (16 pixels) per image
const PERV: u32 = VECS / WG; // vectors per invocation (plain path)

struct Params {
  n0: u32, // images in data0
  splitBase: u32, // index of the split's first image in the dataset
  splitN: u32, // images in the split
  R: u32, // rows to write
  key: u32, // seed of the shuffle
  halfBits: u32, // Feistel half width: 4^halfBits ≥ splitN
  flip: u32, // augmentation: random horizontal flip when ≠ 0 (AUGMENT only)
  shift: u32, // augmentation: maximal translation T in pixels, 0..31 (AUGMENT only)
}
// @include step

@group(0) @binding(0) var<storage, read> data0: array<vec4u>;
@group(0) @binding(1) var<storage, read> data1: array<vec4u>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
// norm: row 0 holds WORDS mean quads, row 1 WORDS 1/std quads; bound as a read-only storage
// texture where WGSL allows it (llvmpipe loads those for about half a sampled texel's cost)
// @if NORM_STORAGE
@group(0) @binding(3) var norm: texture_storage_2d<rgba32float, read>;
fn normalise(w: u32, px: vec4f) -> vec4f {
  return (px - textureLoad(norm, vec2u(w, 0u))) * textureLoad(norm, vec2u(w, 1u));
}
// @else
@group(0) @binding(3) var norm: texture_2d<f32>;
fn normalise(w: u32, px: vec4f) -> vec4f {
  return (px - textureLoad(norm, vec2u(w, 0u), 0)) * textureLoad(norm, vec2u(w, 1u), 0);
}
// @endif
// X is a storage buffer, or, for matmuls that read it as a texture (see matmul.wgsl's A_TEXTURE),
// a write-only rgba32float texture of R rows × 768 texels.
// @if X_TEXTURE
@group(0) @binding(4) var Xt: texture_storage_2d<rgba32float, write>;
fn storeX(r: u32, w: u32, v: vec4f) { textureStore(Xt, vec2u(w, r), v); }
// @else
@group(0) @binding(4) var<storage, read_write> X: array<vec4f>;
fn storeX(r: u32, w: u32, v: vec4f) { X[r * WORDS + w] = v; }
// @endif
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

// Byte b (0..3071) of image img.
fn pixelAt(img: u32, b: u32) -> u32 {
  var v: vec4u;
  if (img < p.n0) {
    v = data0[img * VECS + (b >> 4u)];
  } else {
    v = data1[(img - p.n0) * VECS + (b >> 4u)];
  }
  return (v[(b >> 2u) & 3u] >> ((b & 3u) * 8u)) & 0xffu;
}

// Row r from image img (sample `sample` of the split), mirrored and shifted as the hash decides.
fn gatherAugmented(lx: u32, r: u32, img: u32, sample: u32) {
  let h = random3(p.key, st.epoch, AUG_STREAM, sample);
  let flip = p.flip != 0u && (h >> 31u) == 1u;
  let span = 2u * p.shift + 1u;
  let dx = i32(((h >> 16u) & 0x7fffu) % span) - i32(p.shift);
  let dy = i32((h & 0xffffu) % span) - i32(p.shift);
  for (var uk = 0u; uk < PER; uk++) { // @unroll
    let w = lx + uk * WG;
    let c = w >> 8u; // 256 words per colour plane
    let q = (w & 255u) * 4u; // first pixel of the word within the plane
    let sy = i32(q >> 5u) - dy;
    let x0 = i32(q & 31u) - dx;
    var px = vec4f(0.0);
    var inside = vec4<bool>(false);
    if (sy >= 0 && sy < 32) {
      for (var j = 0u; j < 4u; j++) { // @unroll
        let tx = x0 + i32(j);
        if (tx >= 0 && tx < 32) {
          let sx = u32(select(tx, 31 - tx, flip));
          px[j] = f32(pixelAt(img, c * 1024u + u32(sy) * 32u + sx));
          inside[j] = true;
        }
      }
    }
    storeX(r, w, select(vec4f(0.0), normalise(w, px), inside));
  }
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
  if (TRAIN && AUGMENT) {
    gatherAugmented(lid.x, r, img, sample);
  } else {
    for (var uk = 0u; uk < PERV; uk++) { // @unroll
      let v = lid.x + uk * WG;
      var words: vec4u;
      if (img < p.n0) {
        words = data0[img * VECS + v];
      } else {
        words = data1[(img - p.n0) * VECS + v];
      }
      for (var ue = 0u; ue < 4u; ue++) { // @unroll
        let word = words[ue];
        let w = v * 4u + ue;
        let px = vec4f(f32(word & 0xffu), f32((word >> 8u) & 0xffu), f32((word >> 16u) & 0xffu), f32(word >> 24u));
        storeX(r, w, normalise(w, px));
      }
    }
  }
  if (lid.x == 0u) { y[r] = labels[img]; }
}
