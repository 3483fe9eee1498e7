"""Shared parts of the Python peers of `deno task bench --peers`.

The bench starts a peer as a subprocess and talks to it one JSON object per line: requests on
stdin ({"cmd": ..., "args": {...}}), replies on stdout as lines starting with PREFIX
({"ok": value} or {"error": message}). The first reply, unasked, is the peer's hello.

The data directory written by the bench holds the same CIFAR-10 samples and normalisation the
WebGPU trainer uses: train_images.u8 (n x 3072 bytes), train_labels.u8, val_images.u8,
val_labels.u8, mean.f32 and istd.f32 (3072 float32 each), meta.json.
"""

import ctypes
import json
import os
import platform
import sys
import traceback

import numpy as np

PREFIX = "@@bench "


def send(obj):
    """Write one protocol line."""
    sys.stdout.write(PREFIX + json.dumps(obj) + "\n")
    sys.stdout.flush()


def load_data(path):
    """The bench's data directory as numpy arrays (uint8 images and labels, float32 stats)."""
    with open(os.path.join(path, "meta.json")) as f:
        meta = json.load(f)
    dim = meta["dim"]

    def u8(name, n, width):
        a = np.fromfile(os.path.join(path, name), dtype=np.uint8)
        return a.reshape(n, width) if width > 1 else a

    data = {
        "train_images": u8("train_images.u8", meta["train"], dim),
        "train_labels": u8("train_labels.u8", meta["train"], 1).astype(np.int64),
        "mean": np.fromfile(os.path.join(path, "mean.f32"), dtype=np.float32),
        "istd": np.fromfile(os.path.join(path, "istd.f32"), dtype=np.float32),
        "meta": meta,
    }
    if meta.get("val", 0) > 0:
        data["val_images"] = u8("val_images.u8", meta["val"], dim)
        data["val_labels"] = u8("val_labels.u8", meta["val"], 1).astype(np.int64)
    return data


def eta_at(schedule, t):
    """Learning rate at step t (cyclic triangular or constant), as in src/train/schedule.ts."""
    if schedule["kind"] != "cyclic":
        return schedule["eta"]
    ns = schedule["stepSize"]
    c = t % (2 * ns)
    frac = c / ns if c <= ns else 2 - c / ns
    return schedule["etaMin"] + frac * (schedule["etaMax"] - schedule["etaMin"])


def openblas_core():
    """Name of the OpenBLAS kernel set in use (e.g. SkylakeX), from any loaded OpenBLAS."""
    try:
        with open("/proc/self/maps") as f:
            libs = sorted({ln.split()[-1] for ln in f if "openblas" in ln.lower() and ".so" in ln})
    except OSError:
        return None
    for lib in libs:
        try:
            handle = ctypes.CDLL(lib)
        except OSError:
            continue
        for prefix in ("openblas", "scipy_openblas"):
            for suffix in ("", "64_"):
                fn = getattr(handle, f"{prefix}_get_corename{suffix}", None)
                if fn is None:
                    continue
                fn.restype = ctypes.c_char_p
                cfg = getattr(handle, f"{prefix}_get_config{suffix}", None)
                if cfg is not None:
                    cfg.restype = ctypes.c_char_p
                return {
                    "library": lib,
                    "core": fn().decode(),
                    "config": cfg().decode().strip() if cfg is not None else None,
                }
    return None


def blas_info():
    """Which BLAS numpy calls, and with which kernels and threads."""
    info = {
        "openblas": openblas_core(),
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                               "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")},
    }
    try:
        from threadpoolctl import threadpool_info

        info["threadpools"] = [
            {k: d.get(k) for k in ("internal_api", "version", "architecture", "num_threads",
                                   "threading_layer", "filepath")}
            for d in threadpool_info()
        ]
    except ImportError:
        info["threadpools"] = "threadpoolctl not installed"
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg["Build Dependencies"]["blas"]
        info["numpy_build"] = {k: blas.get(k) for k in ("name", "version", "openblas configuration")}
    except Exception:  # numpy < 1.26 has no dict mode
        opt = getattr(np.__config__, "blas_opt_info", None) or {}
        info["numpy_build"] = {"libraries": opt.get("libraries")}
    return info


def base_hello(name):
    """Facts every Python peer reports."""
    return {
        "peer": name,
        "python": platform.python_version(),
        "executable": os.path.realpath(sys.executable),
        "numpy": np.__version__,
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
    }


def serve(impl):
    """Answer requests until `quit` or end of input; `impl` has hello() and one method per cmd."""
    send({"ok": impl.hello()})
    commands = {"setup", "steps", "epoch", "sweep", "loss", "verify"}
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            msg = json.loads(line)
            cmd = msg.get("cmd")
            if cmd == "quit":
                send({"ok": True})
                return
            if cmd not in commands or not hasattr(impl, cmd):
                send({"error": f"unsupported command {cmd!r}"})
                continue
            send({"ok": getattr(impl, cmd)(**msg.get("args", {}))})
        except Exception as e:  # report, keep serving
            traceback.print_exc(file=sys.stderr)
            send({"error": f"{type(e).__name__}: {e}"})


def data_arg(argv):
    """The value of --data DIR."""
    if "--data" not in argv:
        raise SystemExit("usage: peer --data DIR")
    return argv[argv.index("--data") + 1]
