"""numpy float32 peer: the WebGPU trainer's training step, written as a numpy user would.

One step: gather B shuffled rows of the uint8 images and normalise them to float32, forward
through ReLU hidden layers, softmax cross-entropy gradient (P - Y) / B, backward, and SGD with
L2: W -= eta (dW + 2 lambda W), b -= eta db. Everything stays float32.

Run by bench/bench.ts: python3 numpy_peer.py --data DIR (protocol in common.py).
"""

import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

from common import base_hello, blas_info, data_arg, eta_at, load_data, serve  # noqa: E402


class Net:
    """Parameters and one training step of a fully connected ReLU net."""

    def __init__(self, data, sizes, batch, lam, schedule, seed, split="train"):
        self.images = data[f"{split}_images"]
        self.labels = data[f"{split}_labels"]
        self.mean = data["mean"]
        self.istd = data["istd"]
        self.sizes = sizes
        self.batch = batch
        self.lam = lam
        self.schedule = schedule
        self.rng = np.random.default_rng(seed)
        self.W = []
        self.b = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            w = self.rng.standard_normal((n_in, n_out), dtype=np.float32)
            w *= np.float32(1 / math.sqrt(n_in))  # Xavier, as the trainer's default
            self.W.append(w)
            self.b.append(np.zeros(n_out, dtype=np.float32))
        self.n = self.images.shape[0]
        self.steps_per_epoch = self.n // batch
        self.rows = np.arange(batch)
        self.t = 0
        self.perm = None

    def step(self, idx=None):
        """One training step (gather + forward + loss gradient + backward + SGD/L2); `idx`
        overrides the batch's sample indices (for the cross-check with the trainer)."""
        B, W, b = self.batch, self.W, self.b
        if idx is None:
            k = self.t % self.steps_per_epoch
            if k == 0 or self.perm is None:
                self.perm = self.rng.permutation(self.n)
            idx = self.perm[k * B:(k + 1) * B]
        eta = np.float32(eta_at(self.schedule, self.t))
        self.t += 1
        x = self.images[idx].astype(np.float32)
        x -= self.mean
        x *= self.istd
        y = self.labels[idx]
        acts = [x]
        h = x
        for l in range(len(W) - 1):
            h = h @ W[l]
            h += b[l]
            np.maximum(h, 0, out=h)
            acts.append(h)
        g = h @ W[-1]
        g += b[-1]
        g -= g.max(axis=1, keepdims=True)
        np.exp(g, out=g)
        g /= g.sum(axis=1, keepdims=True)
        g[self.rows, y] -= 1
        g *= np.float32(1 / B)
        two_lam = np.float32(2 * self.lam)
        for l in range(len(W) - 1, -1, -1):
            a = acts[l]
            g_in = None
            if l > 0:
                g_in = g @ W[l].T
                g_in *= a > 0
            dw = a.T @ g
            dw += two_lam * W[l]
            dw *= eta
            W[l] -= dw
            b[l] -= eta * g.sum(axis=0)
            g = g_in

    def evaluate(self, images, labels, chunk=1000):
        """Mean loss and accuracy over a split, and the sum of squared weights (as the trainer)."""
        loss = 0.0
        correct = 0
        for s in range(0, images.shape[0], chunk):
            x = images[s:s + chunk].astype(np.float32)
            x -= self.mean
            x *= self.istd
            h = x
            for l in range(len(self.W) - 1):
                h = h @ self.W[l]
                h += self.b[l]
                np.maximum(h, 0, out=h)
            z = h @ self.W[-1] + self.b[-1]
            z -= z.max(axis=1, keepdims=True)
            lse = np.log(np.exp(z).sum(axis=1))
            y = labels[s:s + chunk]
            loss += float((lse - z[np.arange(len(y)), y]).sum())
            correct += int((z.argmax(axis=1) == y).sum())
        l2 = float(sum((w.astype(np.float64) ** 2).sum() for w in self.W))
        n = images.shape[0]
        return {"loss": loss / n, "accuracy": correct / n, "l2": l2}


class NumpyPeer:
    """The protocol's commands for numpy."""

    def __init__(self, data):
        self.data = data
        self.net = None

    def hello(self):
        return {**base_hello("numpy"), "blas": blas_info(), "capabilities": ["steps", "epoch", "sweep", "verify"]}

    def setup(self, sizes, batch, lam, schedule, seed=0):
        self.net = Net(self.data, sizes, batch, lam, schedule, seed)
        return {"stepsPerEpoch": self.net.steps_per_epoch}

    def steps(self, n):
        t0 = time.perf_counter()
        for _ in range(n):
            self.net.step()
        return {"ms": (time.perf_counter() - t0) * 1e3}

    def epoch(self):
        net = self.net
        net.t = -(-net.t // net.steps_per_epoch) * net.steps_per_epoch  # next epoch start
        t0 = time.perf_counter()
        for _ in range(net.steps_per_epoch):
            net.step()
        return {"ms": (time.perf_counter() - t0) * 1e3}

    def verify(self, sizes, batch, lam, schedule, steps, init, idx):
        """Train from the trainer's initial parameters on its batches; score 1000 samples."""
        net = Net(self.data, sizes, batch, lam, schedule, 0)
        flat = np.fromfile(init, dtype=np.float32)
        at = 0
        for l in range(len(sizes) - 1):
            n_in, n_out = sizes[l], sizes[l + 1]
            net.W[l] = flat[at:at + n_in * n_out].reshape(n_in, n_out).copy()
            at += n_in * n_out
            net.b[l] = flat[at:at + n_out].copy()
            at += n_out
        rows = np.fromfile(idx, dtype=np.uint32).astype(np.int64).reshape(steps, batch)
        for t in range(steps):
            net.step(rows[t])
        d = self.data
        return net.evaluate(d["train_images"][:1000], d["train_labels"][:1000])

    def loss(self):
        d = self.data
        return self.net.evaluate(d["train_images"][:1000], d["train_labels"][:1000])

    def sweep(self, sizes, batch, lambdas, schedule, steps, evaluate):
        """Train one model per lambda in turn; with `evaluate`, score train and val at the start
        and the end (as trainPopulation does with evalEvery = steps)."""
        d = self.data
        t0 = time.perf_counter()
        final = []
        for i, lam in enumerate(lambdas):
            net = Net(d, sizes, batch, lam, schedule, seed=i)
            if evaluate:
                net.evaluate(d["train_images"], d["train_labels"])
                if "val_images" in d:
                    net.evaluate(d["val_images"], d["val_labels"])
            for _ in range(steps):
                net.step()
            if evaluate:
                net.evaluate(d["train_images"], d["train_labels"])
                if "val_images" in d:
                    final.append(net.evaluate(d["val_images"], d["val_labels"])["accuracy"])
        return {"ms": (time.perf_counter() - t0) * 1e3, "valAccuracy": final}


if __name__ == "__main__":
    serve(NumpyPeer(load_data(data_arg(sys.argv))))
