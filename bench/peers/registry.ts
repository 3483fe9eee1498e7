/**
 * The peers: the tools users would pick instead of this project, each doing the trainer's exact
 * work in its own subprocess. A peer that cannot start is reported as skipped with the reason
 * (and how to install it), never silently dropped.
 *
 * @module
 */

import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type PeerCommand, PeerError } from "./client.ts";

/** Every peer name, in table order. */
export const PEER_NAMES = [
  "numpy",
  "numpy-pip",
  "torch-cpu",
  "torch-cuda",
  "tfjs-wasm",
  "tfjs-webgpu",
] as const;

/** A peer's name. */
export type PeerName = (typeof PEER_NAMES)[number];

/** What each peer is, in a few words (table legends). */
export const PEER_DESCRIPTIONS: Record<PeerName, string> = {
  "numpy": "numpy float32, Debian python3-numpy (/usr/bin/python3)",
  "numpy-pip": "numpy float32, the python3 on PATH (e.g. a pip wheel with its own OpenBLAS)",
  "torch-cpu": "PyTorch CPU, Debian python3-torch: nn.Linear + autograd + optim.SGD",
  "torch-cuda": "PyTorch on CUDA (when a CUDA GPU and a CUDA build exist)",
  "tfjs-wasm": "TensorFlow.js 4.22 in Deno, wasm backend",
  "tfjs-webgpu": "TensorFlow.js 4.22 in Deno, webgpu backend (same adapter as ours)",
};

/** Interpreters the Python peers run on. */
export interface PythonPaths {
  /** Debian's interpreter, with python3-numpy / python3-torch. */
  system: string;
  /** The python3 found on PATH (a second numpy build), if any. */
  path: string | null;
  /** The interpreter of the torch-cuda peer (default: the first of `path`, `system` whose
   * PyTorch sees a CUDA device). */
  cuda?: string | null;
}

/**
 * The interpreter whose PyTorch sees a CUDA device: `explicit` if given, else the first of the
 * PATH python3 and the system one that passes; `{ skip }` with what each said otherwise.
 */
export async function findCudaPython(py: PythonPaths): Promise<string | { skip: string }> {
  if (py.cuda) return py.cuda;
  const why: string[] = [];
  const code = "import sys\ntry:\n import torch\nexcept ImportError:\n sys.exit(3)\n" +
    "sys.exit(0 if torch.cuda.is_available() else 4)";
  for (const exe of [...new Set([py.path, py.system].filter((p): p is string => !!p))]) {
    try {
      const out = await new Deno.Command(exe, {
        args: ["-c", code],
        stdout: "null",
        stderr: "null",
        env: pythonEnv(),
        clearEnv: true,
      }).output();
      if (out.code === 0) return exe;
      why.push(`${exe}: ${out.code === 3 ? "no PyTorch" : "torch.cuda.is_available() is False"}`);
    } catch (e) {
      why.push(`${exe}: ${(e as Error).message}`);
    }
  }
  return { skip: `no CUDA device for PyTorch (${why.join("; ")})` };
}

const HERE = dirname(fileURLToPath(import.meta.url));
/** The project root (where deno.json lives). */
export const ROOT: string = join(HERE, "..", "..");

/** Environment of the Python peers: the parent's, minus the OpenBLAS overrides that slow numpy. */
export function pythonEnv(): Record<string, string> {
  const env = Deno.env.toObject();
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  return env;
}

/** Find an executable on PATH. */
export function which(name: string): string | null {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (!dir) continue;
    const p = join(dir, name);
    try {
      if (Deno.statSync(p).isFile) return p;
    } catch { /* not here */ }
  }
  return null;
}

/** How to start a peer on the data in `dataDir`, or why it cannot be started at all. */
export function peerCommand(
  name: PeerName,
  dataDir: string,
  py: PythonPaths,
): PeerCommand | { skip: string } {
  const python = (exe: string, script: string, extra: string[] = []): PeerCommand => ({
    cmd: exe,
    args: ["-B", join(HERE, script), "--data", dataDir, ...extra],
    env: pythonEnv(),
    clearEnv: true,
    cwd: ROOT,
  });
  const tfjs = (backend: string): PeerCommand => ({
    cmd: Deno.execPath(),
    args: [
      "run",
      "-A",
      "--no-lock",
      join(HERE, "tfjs.ts"),
      "--backend",
      backend,
      "--data",
      dataDir,
    ],
    env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp", NO_COLOR: "1" },
    cwd: ROOT,
  });
  switch (name) {
    case "numpy":
      return python(py.system, "numpy_peer.py");
    case "numpy-pip":
      if (!py.path) return { skip: "no python3 on PATH besides the system one" };
      return python(py.path, "numpy_peer.py");
    case "torch-cpu":
      return python(py.system, "torch_peer.py", ["--device", "cpu"]);
    case "torch-cuda":
      if (!py.cuda) return { skip: "no interpreter with a CUDA PyTorch" };
      return python(py.cuda, "torch_peer.py", ["--device", "cuda"]);
    case "tfjs-wasm":
      return tfjs("wasm");
    case "tfjs-webgpu":
      return tfjs("webgpu");
  }
}

/** Turn a start failure into the reason a user reads, with the install hint where one helps. */
export function skipReason(name: PeerName, e: unknown, py: PythonPaths): string {
  const msg = e instanceof PeerError ? e.message : String(e);
  const exe = name === "numpy-pip" ? py.path : name === "torch-cuda" ? py.cuda : py.system;
  if (/No module named 'numpy'/.test(msg)) {
    return `numpy is not installed for ${exe} (Debian: apt-get install python3-numpy)`;
  }
  if (/PyTorch is not installed/.test(msg)) {
    return `PyTorch is not installed for ${exe} (Debian: apt-get install python3-torch)`;
  }
  if (/CUDA is not available/.test(msg)) {
    return "no CUDA: torch.cuda.is_available() is False (no NVIDIA GPU, or a CPU-only PyTorch build)";
  }
  if (/cannot start/.test(msg) && /python/.test(msg)) return `${exe} not found: ${msg}`;
  return msg;
}
