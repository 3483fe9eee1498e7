// η of one model at the step being run, for the kernels that update parameters (included with
// `// @include eta` after `// @include step`; the including shader binds `lam`, the population's
// per-model values). λ of model m sits at lam[m]; for record r of a training step table, the
// trainer writes model m's learning rate at lam[models·(r + 1) + m] (src/model/gpu_params.ts),
// each model following its own schedule. A record with models = 0 (evaluation tables, the tables
// of tests and tools) gives every model the record's own η.
fn etaOf(model: u32) -> f32 {
  if (st.models == 0u) { return st.eta; }
  return lam[st.models * (st.record + 1u) + model];
}
