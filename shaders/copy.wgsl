// Copy a row-major matrix from a storage buffer into an rgba32float texture, one texel (a quad of
// four consecutive floats) per invocation: texel (x, y) = quad x of row y = src[y·ld/4 + x], for
// x < width and y < height and the first `quads` quads of the buffer. Used to seed the texture
// copy of a parameter before a submission, e.g. W₁ read as a texture by the forward pass, for
// rows of any length (copyBufferToTexture needs a multiple of 256 bytes). A wrapped texture (the
// buffer's quads in order, `width` a texture row: src/kernels/placement.ts) is the same copy of
// the buffer read as rows of ld = 4·width floats, the last of them partial (`quads`).

const WG: u32 = 64u;

struct Params { width: u32, height: u32, ld4: u32, quads: u32 }
// @include step

@group(0) @binding(0) var<storage, read> src: array<vec4f>;
@group(0) @binding(1) var dst: texture_storage_2d<rgba32float, write>;
@group(0) @binding(2) var<uniform> p: Params;
@group(0) @binding(3) var<uniform> st: Step;

@compute @workgroup_size(WG)
fn buffer_to_texture(@builtin(global_invocation_id) gid: vec3u) {
  let x = gid.x;
  let y = gid.y;
  if (x >= p.width || y >= p.height || y * p.ld4 + x >= p.quads) { return; }
  textureStore(dst, vec2u(x, y), src[y * p.ld4 + x]);
}
