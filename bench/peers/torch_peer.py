"""PyTorch peer (CPU, or CUDA with --device cuda): the WebGPU trainer's training step, written as
a PyTorch user would: nn.Linear layers with ReLU, F.cross_entropy, autograd, and torch.optim.SGD
whose weight_decay 2*lambda on the weights (none on the biases) gives W -= eta (dW + 2 lambda W).

The uint8 images live on the device; each step gathers B shuffled rows and normalises them to
float32 there, like the trainer's gather kernel. Times on CUDA end with a synchronize.

Run by bench/bench.ts: python3 torch_peer.py --data DIR [--device cpu|cuda] (see common.py).
"""

import math
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import base_hello, blas_info, data_arg, eta_at, load_data, serve  # noqa: E402

try:
    import torch
    import torch.nn.functional as F
    from torch import nn
except ImportError as e:  # reported as a skip by the bench
    print(f"PyTorch is not installed ({e}): apt-get install python3-torch", file=sys.stderr)
    sys.exit(3)


def make_net(sizes, seed, device):
    torch.manual_seed(seed)
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        lin = nn.Linear(n_in, n_out)
        with torch.no_grad():
            lin.weight.normal_(0, 1 / math.sqrt(n_in))  # Xavier, as the trainer's default
            lin.bias.zero_()
        layers.append(lin)
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers).to(device)


class TorchPeer:
    """The protocol's commands for PyTorch."""

    def __init__(self, data, device):
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            print("CUDA is not available to this PyTorch (torch.cuda.is_available() is False)",
                  file=sys.stderr)
            sys.exit(4)
        if self.device.type == "cpu":
            torch.set_num_threads(data["meta"].get("threads") or os.cpu_count() or 1)
        d = self.device
        self.images = torch.from_numpy(data["train_images"]).to(d)
        self.labels = torch.from_numpy(data["train_labels"]).to(d)
        self.mean = torch.from_numpy(data["mean"]).to(d)
        self.istd = torch.from_numpy(data["istd"]).to(d)
        self.n = self.images.shape[0]
        self.model = None

    def hello(self):
        h = {**base_hello(f"torch-{self.device.type}"), "torch": torch.__version__,
             "threads": torch.get_num_threads(), "capabilities": ["steps", "epoch", "verify"]}
        cfg = torch.__config__.show()
        m = re.search(r"BLAS_INFO=([\w-]+)", cfg)
        h["torch_blas"] = m.group(1) if m else None
        h["mkldnn"] = torch.backends.mkldnn.is_available()
        if self.device.type == "cuda":
            h["cuda_device"] = torch.cuda.get_device_name(self.device)
        else:
            h["blas"] = blas_info()
        return h

    def sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def setup(self, sizes, batch, lam, schedule, seed=0):
        self.model = make_net(sizes, seed, self.device)
        weights = [p for n, p in self.model.named_parameters() if n.endswith("weight")]
        biases = [p for n, p in self.model.named_parameters() if n.endswith("bias")]
        self.opt = torch.optim.SGD([
            {"params": weights, "weight_decay": 2 * lam},
            {"params": biases, "weight_decay": 0.0},
        ], lr=0.0)
        self.batch = batch
        self.schedule = schedule
        self.steps_per_epoch = self.n // batch
        self.gen = torch.Generator(device=self.device).manual_seed(seed)
        self.t = 0
        self.perm = None
        return {"stepsPerEpoch": self.steps_per_epoch}

    def step(self, idx=None):
        B = self.batch
        if idx is None:
            k = self.t % self.steps_per_epoch
            if k == 0 or self.perm is None:
                self.perm = torch.randperm(self.n, generator=self.gen, device=self.device)
            idx = self.perm[k * B:(k + 1) * B]
        eta = eta_at(self.schedule, self.t)
        self.t += 1
        x = (self.images[idx].float() - self.mean) * self.istd
        y = self.labels[idx]
        for g in self.opt.param_groups:
            g["lr"] = eta
        self.opt.zero_grad(set_to_none=True)
        F.cross_entropy(self.model(x), y).backward()
        self.opt.step()

    def steps(self, n):
        self.sync()
        t0 = time.perf_counter()
        for _ in range(n):
            self.step()
        self.sync()
        return {"ms": (time.perf_counter() - t0) * 1e3}

    def epoch(self):
        self.t = -(-self.t // self.steps_per_epoch) * self.steps_per_epoch
        return self.steps(self.steps_per_epoch)

    def loss(self):
        with torch.no_grad():
            x = (self.images[:1000].float() - self.mean) * self.istd
            z = self.model(x)
            y = self.labels[:1000]
            l2 = sum(float(m.weight.double().pow(2).sum())
                     for m in self.model if isinstance(m, nn.Linear))
            return {"loss": F.cross_entropy(z, y).item(),
                    "accuracy": (z.argmax(1) == y).float().mean().item(), "l2": l2}

    def verify(self, sizes, batch, lam, schedule, steps, init, idx):
        """Train from the trainer's initial parameters on its batches; score 1000 samples."""
        import numpy as np

        self.setup(sizes, batch, lam, schedule, 0)
        flat = np.fromfile(init, dtype=np.float32)
        at = 0
        linears = [m for m in self.model if isinstance(m, nn.Linear)]
        with torch.no_grad():
            for l, lin in enumerate(linears):
                n_in, n_out = sizes[l], sizes[l + 1]
                w = flat[at:at + n_in * n_out].reshape(n_in, n_out)
                at += n_in * n_out
                lin.weight.copy_(torch.from_numpy(w.T.copy()))
                lin.bias.copy_(torch.from_numpy(flat[at:at + n_out].copy()))
                at += n_out
        rows = np.fromfile(idx, dtype=np.uint32).astype(np.int64).reshape(steps, batch)
        rows = torch.from_numpy(rows).to(self.device)
        for t in range(steps):
            self.step(rows[t])
        return self.loss()


if __name__ == "__main__":
    device = sys.argv[sys.argv.index("--device") + 1] if "--device" in sys.argv else "cpu"
    serve(TorchPeer(load_data(data_arg(sys.argv)), device))
