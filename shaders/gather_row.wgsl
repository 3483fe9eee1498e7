// The rows of a batch gather (included with `// @include gather_row`): the bindings, the keyed
// shuffle and the row fill that gather.wgsl's entry point runs, and that tail.wgsl runs for the
// next step's batch when it carries the gather (GATHER). See gather.wgsl for the method. The host
// declares the bool constants TRAIN, X_TEXTURE, INDEX, NORM_STORAGE, AUGMENT and the workgroup size WG,
// which must divide WORDS/4 (and WORDS when AUGMENT): each invocation fills PERV vectors of a row.
// Bindings 20–26, clear of the host's own.

const AUG_STREAM: u32 = 0x61756721u; // random3 stream of the augmentation decisions ("aug!")
const WORDS: u32 = 768u; // u32 words (4 pixels each) per 3072-byte image
const PER: u32 = WORDS / WG; // words per invocation (augmented path)
const VECS: u32 = WORDS / 4u; // 16-byte vectors (16 pixels) per image
const PERV: u32 = VECS / WG; // vectors per invocation (plain path)

struct GatherParams {
  n0: u32, // images in data0
  splitBase: u32, // index of the split's first image in the dataset
  splitN: u32, // images in the split
  R: u32, // rows to write
  key: u32, // seed of the shuffle
  halfBits: u32, // Feistel half width: 4^halfBits ≥ splitN
  flip: u32, // augmentation: random horizontal flip when ≠ 0 (AUGMENT only)
  shift: u32, // augmentation: maximal translation T in pixels, 0..31 (AUGMENT only)
}

@group(0) @binding(20) var<storage, read> data0: array<vec4u>;
@group(0) @binding(21) var<storage, read> data1: array<vec4u>;
@group(0) @binding(22) var<storage, read> dsLabels: array<u32>; // the dataset's labels
// norm: row 0 holds WORDS mean quads, row 1 WORDS 1/std quads; bound as a read-only storage
// texture where WGSL allows it (llvmpipe loads those for about half a sampled texel's cost)
// @if NORM_STORAGE
@group(0) @binding(23) var norm: texture_storage_2d<rgba32float, read>;
fn normMean(w: u32) -> vec4f { return textureLoad(norm, vec2u(w, 0u)); }
fn normInvStd(w: u32) -> vec4f { return textureLoad(norm, vec2u(w, 1u)); }
// @else
@group(0) @binding(23) var norm: texture_2d<f32>;
fn normMean(w: u32) -> vec4f { return textureLoad(norm, vec2u(w, 0u), 0); }
fn normInvStd(w: u32) -> vec4f { return textureLoad(norm, vec2u(w, 1u), 0); }
// @endif
fn normalise(w: u32, px: vec4f) -> vec4f { return (px - normMean(w)) * normInvStd(w); }
// X is a storage buffer, or, for matmuls that read it as a texture (see matmul.wgsl's A_TEXTURE),
// a write-only rgba32float texture of R rows × 768 texels; or (INDEX) no X at all but the batch's
// image indices, through which the products read the dataset's images themselves (matmul.wgsl's
// A_IMAGES), one u32 a row.
// @if INDEX
@group(0) @binding(24) var<storage, read_write> xIndex: array<u32>;
// @else
// @if X_TEXTURE
@group(0) @binding(24) var Xt: texture_storage_2d<rgba32float, write>;
fn storeX(r: u32, w: u32, v: vec4f) { textureStore(Xt, vec2u(w, r), v); }
// @else
@group(0) @binding(24) var<storage, read_write> X: array<vec4f>;
fn storeX(r: u32, w: u32, v: vec4f) { X[r * WORDS + w] = v; }
// @endif
// @endif
@group(0) @binding(25) var<storage, read_write> y: array<u32>; // the batch's labels
@group(0) @binding(26) var<uniform> gp: GatherParams;

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
  if (img < gp.n0) {
    v = data0[img * VECS + (b >> 4u)];
  } else {
    v = data1[(img - gp.n0) * VECS + (b >> 4u)];
  }
  return (v[(b >> 2u) & 3u] >> ((b & 3u) * 8u)) & 0xffu;
}

// @if INDEX
// @else
// Row r from image img (sample `sample` of the split in epoch `epoch`), mirrored and shifted as
// the hash decides.
fn gatherAugmented(lx: u32, r: u32, img: u32, sample: u32, epoch: u32) {
  let h = random3(gp.key, epoch, AUG_STREAM, sample);
  let flip = gp.flip != 0u && (h >> 31u) == 1u;
  let span = 2u * gp.shift + 1u;
  let dx = i32(((h >> 16u) & 0x7fffu) % span) - i32(gp.shift);
  let dy = i32((h & 0xffffu) % span) - i32(gp.shift);
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

// Row r of X and y from sample `sample` of the split (of epoch `epoch`: the augmentation's key),
// invocation lx of the WG that fill it, one row at a time: the augmented path of gatherRows.
fn gatherRow(lx: u32, r: u32, sample: u32, epoch: u32) {
  let img = gp.splitBase + sample;
  gatherAugmented(lx, r, img, sample, epoch);
  if (lx == 0u) { y[r] = dsLabels[img]; }
}

// @endif
// The sample of row r: TRAIN, position start + r of the permutation keyed `key` (epoch's shuffle,
// epochKey); EVAL, sample start + r of the split.
fn sampleOf(r: u32, key: u32, start: u32) -> u32 {
  if (TRAIN) { return permute(start + r, gp.splitN, key, gp.halfBits); }
  return start + r;
}

// Rows [first, end) of X and y, invocation lx of the WG that fill each row: a training batch
// whose first row is position `start` of epoch `epoch`'s permutation, or (EVAL) samples start + r.
// Each invocation loads the normalisation of its PERV vectors (8 texels per 16 pixels) once for
// all of the rows, and then per row one 16-byte load and four stores a vector; loaded per row,
// the normalisation was two thirds of the loads.
// INDEX: each invocation takes rows first + lx, first + lx + WG, … and writes their image index
// and label, nothing else.
fn gatherRows(lx: u32, first: u32, end: u32, epoch: u32, start: u32) {
  let key = epochKey(gp.key, epoch);
  // @if INDEX
  for (var r = first + lx; r < end; r += WG) {
    let img = gp.splitBase + sampleOf(r, key, start);
    xIndex[r] = img;
    y[r] = dsLabels[img];
  }
  // @else
  if (TRAIN && AUGMENT) {
    for (var r = first; r < end; r++) { gatherRow(lx, r, sampleOf(r, key, start), epoch); }
    return;
  }
  var mean: array<vec4f, 4u * PERV>;
  var invStd: array<vec4f, 4u * PERV>;
  for (var uk = 0u; uk < PERV; uk++) { // @unroll
    for (var ue = 0u; ue < 4u; ue++) { // @unroll
      let w = (lx + uk * WG) * 4u + ue;
      mean[uk * 4u + ue] = normMean(w);
      invStd[uk * 4u + ue] = normInvStd(w);
    }
  }
  for (var r = first; r < end; r++) {
    let img = gp.splitBase + sampleOf(r, key, start);
    for (var uk = 0u; uk < PERV; uk++) { // @unroll
      let v = lx + uk * WG;
      var words: vec4u;
      if (img < gp.n0) {
        words = data0[img * VECS + v];
      } else {
        words = data1[(img - gp.n0) * VECS + v];
      }
      for (var ue = 0u; ue < 4u; ue++) { // @unroll
        let word = words[ue];
        let px = vec4f(f32(word & 0xffu), f32((word >> 8u) & 0xffu), f32((word >> 16u) & 0xffu), f32(word >> 24u));
        storeX(r, v * 4u + ue, (px - mean[uk * 4u + ue]) * invStd[uk * 4u + ue]);
      }
    }
    if (lx == 0u) { y[r] = dsLabels[img]; }
  }
  // @endif
}
