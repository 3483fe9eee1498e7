// One record of a step table (included with `// @include step`): the per-dispatch values that
// change from one encoded dispatch to the next without rebuilding a bind group. A step table is a
// uniform buffer of records STEP_STRIDE (256) bytes apart; every kernel binds it as
// `var<uniform> st: Step` with a dynamic offset selecting the record (encodeOp in
// src/kernels/op.ts), and encodeSteps in src/gpu/buffers.ts packs records by these field names,
// at the offsets this declaration gives them (fields left out are 0). Scalars only, 4 bytes each.
//
// Training steps (stepRecords in src/train/trainer.ts):
//   step   0-based index of the training step: seeds dropout masks (matmul, batchnorm) and gives
//          Adam's t = step + 1 (update)
//   epoch  epoch of the step: re-keys the shuffle and the augmentation decisions (gather)
//   pos    first sample of the batch within the epoch's permutation (gather)
//   eta    learning rate η of the step, when models = 0 (matmul and batchnorm SGD, update, tail)
// Evaluation chunks (Evaluator in src/train/evaluate.ts):
//   base   first row of the chunk within the split (gather)
//   rows   valid rows of the chunk: later rows are skipped (gather, batchnorm eval, reduce)
//   slot   metrics slot the chunk's sums accumulate into (reduce)
// Per-model learning rates (stepRecords in src/train/trainer.ts; read by etaOf in eta.wgsl):
//   record  index of this record within its table
//   models  models of the population whose per-model η table is written beside λ, or 0: every
//           model takes `eta`
// The next step's batch, gathered during this step by a tail that carries the gather (tail.wgsl
// with GATHER; src/kernels/placement.ts fuses them):
//   next       1: gather the batch of the next step (epoch nextEpoch, position nextPos); 0: the
//              next step is not in this submission (its prologue gathers it)
//   nextEpoch  epoch of the next step
//   nextPos    first sample of the next step's batch within that epoch's permutation
struct Step {
  step: u32, epoch: u32, pos: u32, eta: f32, base: u32, rows: u32, slot: u32, record: u32,
  models: u32, next: u32, nextEpoch: u32, nextPos: u32,
}
