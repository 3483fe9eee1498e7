// Counter-based random bits shared by kernels (included with `// @include random`): no state,
// the same value for the same inputs on every device, and a TypeScript twin in
// src/reference/random.ts.

// 32-bit integer hash (lowbias32, by Chris Wellons).
fn hash(x: u32) -> u32 {
  var v = x;
  v ^= v >> 16u;
  v *= 0x7feb352du;
  v ^= v >> 15u;
  v *= 0x846ca68bu;
  v ^= v >> 16u;
  return v;
}

// Random bits for element `index` of stream (seed, a, b): e.g. a = step, b = layer.
fn random3(seed: u32, a: u32, b: u32, index: u32) -> u32 {
  return hash(index ^ hash(b ^ hash(a ^ hash(seed))));
}

// Dropout: keep element `index` unless its random bits fall below `threshold` = p·2³².
fn dropKeep(seed: u32, step: u32, layer: u32, index: u32, threshold: u32) -> bool {
  return random3(seed, step, layer, index) >= threshold;
}
