// Batch gather: build the normalised input rows X (R × 3072) and labels y of a mini-batch from
// the u8 dataset resident on the GPU. A workgroup of WG invocations fills ROWS rows, each
// invocation loading VECS/WG 16-byte vectors of 16 pixels of each row (augmented: WORDS/WG words
// of 4), so a row's sample index is computed WG times rather than 768, and each invocation loads
// its share of the normalisation table once for the workgroup's rows. Loads of 16 bytes rather
// than 4, 192 invocations a row rather than 64, and the normalisation table in a texture took a
// 100-row batch from 0.85 to 0.55 ms on llvmpipe (50 000 images resident); 4 rows a workgroup
// rather than 1 took another third off. The bindings and the row fill are in gather_row.wgsl,
// which tail.wgsl includes too (a tail that gathers the next step's batch).
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
const INDEX: bool = false; // write the rows' image indices instead of X (gather_row.wgsl)
const NORM_STORAGE: bool = false; // norm bound as a read-only storage texture (else sampled)
const AUGMENT: bool = false;
const WG: u32 = 192u;
const ROWS: u32 = 4u; // rows of a workgroup, which share the loads of the normalisation

// @include step
@group(0) @binding(0) var<uniform> st: Step;

// @include gather_row

@compute @workgroup_size(WG)
fn gather(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let first = wid.x * ROWS;
  if (TRAIN) {
    gatherRows(lid.x, first, min(first + ROWS, gp.R), st.epoch, st.pos);
  } else {
    gatherRows(lid.x, first, min(first + ROWS, min(gp.R, st.rows)), st.epoch, st.base);
  }
}
