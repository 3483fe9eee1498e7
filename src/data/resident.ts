/**
 * The dataset resident on the GPU: every image of every split uploaded once as raw bytes (four
 * pixels per u32), labels as u32, and the normalisation statistics. Kernels gather batches from
 * it by index; nothing crosses back to the CPU during training.
 *
 * @module
 */

import { IMAGE_BYTES } from "./format.ts";
import { uploadBuffer, writeBuffer } from "../gpu/buffers.ts";
import { UserError } from "../errors.ts";

/** A contiguous range of images in the resident dataset. */
export interface SplitRange {
  /** Dataset index of the first image. */
  base: number;
  /** Number of images. */
  n: number;
}

/** Images, labels and normalisation statistics in GPU buffers. */
export interface ResidentDataset {
  /** Images [0, n0) in data0, the rest in data1 (one binding holds ≤ maxStorageBufferBindingSize). */
  data0: GPUBuffer;
  /** Images [n0, total), image i at byte (i − n0)·3072; 16 unused bytes when data0 holds all. */
  data1: GPUBuffer;
  /** Number of images in data0. */
  n0: number;
  /** One u32 class index per image, in dataset order. */
  labels: GPUBuffer;
  /**
   * Normalisation as an rgba32float texture of 768 × 2 texels: row 0 the per-dimension means,
   * row 1 the inverse standard deviations, four dimensions per texel (texel loads are the cheap
   * loads on CPU adapters, and a small table either way on a GPU).
   */
  norm: GPUTexture;
  /** Images in the dataset, all parts together. */
  total: number;
  /** Where each named part landed. */
  splits: Record<string, SplitRange>;
  /** Free the image, label and normalisation buffers. */
  destroy(): void;
}

/** One part to upload: raw images (n·3072 bytes) and labels (n). */
export interface DatasetPart {
  /** Key of the part's range in {@link ResidentDataset.splits} (e.g. `train`). */
  name: string;
  /** n × 3072 raw pixel bytes in CIFAR-10 layout. */
  images: Uint8Array;
  /** n class indices; their count defines n. */
  labels: Uint8Array;
}

/** Upload the parts, in order, and the per-dimension mean and std used to normalise them. */
export function uploadDataset(
  device: GPUDevice,
  parts: DatasetPart[],
  stats: { mean: Float32Array; std: Float32Array },
  /** Images one buffer may hold (default: what the device's storage binding limit allows). */
  maxImagesPerBuffer = Math.floor(device.limits.maxStorageBufferBindingSize / IMAGE_BYTES),
): ResidentDataset {
  const total = parts.reduce((s, p) => s + p.labels.length, 0);
  const cap = maxImagesPerBuffer;
  if (total > 2 * cap) {
    throw new UserError(
      `the dataset has ${total} images but this adapter holds at most ${2 * cap} ` +
        `(maxStorageBufferBindingSize ${device.limits.maxStorageBufferBindingSize}): use fewer training batches`,
    );
  }
  const n0 = total <= cap ? total : Math.ceil(total / 2);
  const make = (n: number, label: string) =>
    device.createBuffer({
      label,
      size: Math.max(16, n * IMAGE_BYTES),
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
    });
  const data0 = make(n0, "images[0]");
  const data1 = make(total - n0, "images[1]");
  const labels = new Uint32Array(total);
  const splits: Record<string, SplitRange> = {};
  let at = 0;
  for (const p of parts) {
    const n = p.labels.length;
    if (p.images.length !== n * IMAGE_BYTES) {
      throw new Error(`part ${p.name}: ${p.images.length} bytes for ${n} labels`);
    }
    splits[p.name] = { base: at, n };
    labels.set(p.labels, at);
    // write the part's images, split at the buffer boundary n0
    const first = Math.max(0, Math.min(n, n0 - at));
    if (first > 0) writeBuffer(device, data0, at * IMAGE_BYTES, p.images, 0, first * IMAGE_BYTES);
    if (first < n) {
      writeBuffer(
        device,
        data1,
        (at + first - n0) * IMAGE_BYTES,
        p.images,
        first * IMAGE_BYTES,
        (n - first) * IMAGE_BYTES,
      );
    }
    at += n;
  }
  const norm = new Float32Array(2 * IMAGE_BYTES);
  for (let d = 0; d < IMAGE_BYTES; d++) {
    norm[d] = stats.mean[d];
    norm[IMAGE_BYTES + d] = 1 / stats.std[d];
  }
  const labelBuf = uploadBuffer(device, labels, "labels");
  const normTex = device.createTexture({
    label: "norm",
    size: [IMAGE_BYTES / 4, 2],
    format: "rgba32float",
    usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.COPY_DST |
      GPUTextureUsage.STORAGE_BINDING,
  });
  device.queue.writeTexture({ texture: normTex }, norm, { bytesPerRow: IMAGE_BYTES * 4 }, [
    IMAGE_BYTES / 4,
    2,
  ]);
  const ds: ResidentDataset = {
    data0,
    data1,
    n0,
    labels: labelBuf,
    norm: normTex,
    total,
    splits,
    destroy() {
      for (const b of [data0, data1, labelBuf, normTex]) b.destroy();
      images.get(ds)?.destroy();
      images.delete(ds);
    },
  };
  return ds;
}

/** Each dataset's images texture, made on first demand ({@link datasetImages}). */
const images = new WeakMap<ResidentDataset, GPUTexture | null>();

/**
 * The dataset's images as one rgba8uint texture, for products that read batches straight from
 * it (`ImagesOperand` in src/kernels/matmul.ts): image i is the 768 texels from
 * ((i mod 8)·768, ⌊i / 8⌋), its bytes in order, so that a texture row is 8 consecutive images of
 * the buffers. Made once per dataset on first demand by copies from its buffers (a second copy of
 * the images: 184 MB for CIFAR-10's 60 000), freed with it. Null when the device's textures are
 * too small (more than 8·maxTextureDimension2D images).
 *
 * @example
 * ```ts ignore
 * const tex = datasetImages(device, dataset); // null past 65 536 images on most devices
 * ```
 */
export function datasetImages(device: GPUDevice, ds: ResidentDataset): GPUTexture | null {
  if (images.has(ds)) return images.get(ds)!;
  const per = IMAGES_PER_TEXTURE_ROW, texels = IMAGE_BYTES / 4;
  const rows = Math.ceil(ds.total / per);
  const max = device.limits.maxTextureDimension2D;
  if (per * texels > max || rows > max) {
    images.set(ds, null);
    return null;
  }
  const tex = device.createTexture({
    label: "images",
    size: [per * texels, rows],
    format: "rgba8uint",
    usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.STORAGE_BINDING |
      GPUTextureUsage.COPY_DST | GPUTextureUsage.COPY_SRC,
  });
  const enc = device.createCommandEncoder();
  // images [from, to) of the dataset, which lie in `buffer` from image `first`
  const copy = (buffer: GPUBuffer, first: number, from: number, to: number) => {
    let i = from;
    while (i < to) {
      const col = i % per;
      // a partial texture row, or as many whole rows as there are
      const n = col > 0 || to - i < per ? Math.min(per - col, to - i) : to - i - ((to - i) % per);
      const height = col > 0 || n < per ? 1 : n / per;
      enc.copyBufferToTexture(
        { buffer, offset: (i - first) * IMAGE_BYTES, bytesPerRow: per * IMAGE_BYTES },
        { texture: tex, origin: [col * texels, Math.floor(i / per)] },
        [(n / height) * texels, height],
      );
      i += n;
    }
  };
  copy(ds.data0, 0, 0, ds.n0);
  copy(ds.data1, ds.n0, ds.n0, ds.total);
  device.queue.submit([enc.finish()]);
  images.set(ds, tex);
  return tex;
}

/** Images a texture row of {@link datasetImages} holds. */
export const IMAGES_PER_TEXTURE_ROW = 8;
