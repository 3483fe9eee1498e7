# Load runs/<name>/weights.safetensors into PyTorch without the safetensors package and print
# the test accuracy. Usage: python3 docs/pytorch_load.py RUN_DIR CIFAR10_DIR
import json, struct, sys
from collections import OrderedDict
import numpy as np, torch
from torch import nn

run_dir, data_dir = sys.argv[1], sys.argv[2]
raw = bytearray(open(f"{run_dir}/weights.safetensors", "rb").read())
(n,) = struct.unpack("<Q", raw[:8])  # header length: 8 bytes, little-endian
header = json.loads(raw[8:8 + n])
meta = header.pop("__metadata__")
assert meta["input.pixels"] == "uint8 0..255", meta
t = {}
for name, e in header.items():  # every tensor is F32
    a, b = e["data_offsets"]
    t[name] = torch.from_numpy(np.frombuffer(raw[8 + n + a:8 + n + b], "<f4").reshape(e["shape"]))

layers, l = OrderedDict(), 1  # fc1 -> [bn1] -> ReLU -> fc2 -> ... -> fcL (no ReLU)
while f"fc{l}.weight" in t:
    units, inputs = t[f"fc{l}.weight"].shape
    layers[f"fc{l}"] = nn.Linear(inputs, units, bias=f"fc{l}.bias" in t)  # no bias before BN
    if f"bn{l}.weight" in t:  # running_var is the biased variance
        layers[f"bn{l}"] = nn.BatchNorm1d(units, eps=1e-5)
    if f"fc{l + 1}.weight" in t:
        layers[f"relu{l}"] = nn.ReLU()
    l += 1
model = nn.Sequential(layers).eval()
weights = {k: v for k, v in t.items() if not k.startswith("input.")}
missing, unexpected = model.load_state_dict(weights, strict=False)
assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing)

records = np.fromfile(f"{data_dir}/test_batch.bin", np.uint8).reshape(-1, 3073)
labels = torch.from_numpy(records[:, 0].astype(np.int64))
pixels = torch.from_numpy(records[:, 1:].astype(np.float32))  # raw bytes, CHW: R, G, B planes
x = (pixels - t["input.mean"]) / t["input.std"]  # as meta["input.normalise"] says
with torch.no_grad():
    accuracy = (model(x).argmax(1) == labels).double().mean().item()
print(f"test accuracy {100 * accuracy:.2f}% ({len(labels)} images)")
