#!/usr/bin/env bash
# The GPU check, in one command, on a machine with a GPU that reaches no package registry (the
# device machine: one NVIDIA H100/H200, 16 cores, no network; it takes 64 MiB of files in all, so
# neither Deno nor CIFAR-10 can travel as they are). In order, each step with its own time limit so
# that one that hangs does not take the others' time (570 s in all: give the device tool's run
# timeout_s 600):
#   1. tools: Deno and the npm packages from .gpu/ (bench/gpu/pack.sh makes it, here), the
#      Vulkan loader from .gpu/debs where the machine has none; the adapter found;
#   2. data: $CIFAR10_DIR if it holds CIFAR-10, else synthetic CIFAR-10 (bench/gpu/synthetic.ts:
#      the same layout and sizes, so the same speed; its accuracies are chance);
#   3. `deno task bench --peers=numpy,torch-cpu,torch-cuda --only=peak,kernels,steps,epochs`:
#      the FMA ceiling, the step, the kernels with their workgroups and invocations, and epochs,
#      against numpy and PyTorch eager on the CPU and on CUDA;
#   4. experiments/full.json end to end (9000 steps of 3072-50-50-10 with 20 evaluations), then
#      experiments/full-population.json (16 λ of it as one population), wall time of each;
#   5. the kernel tests against their float64 twins on this adapter;
#   6. bench/gpu/summary.ts: the table against the targets of issue 14.
# Results go to $OUT (the device tool's folder, which brings back 8 files at most; default
# bench/results/gpu-<UTC time>): gpu.log (everything printed, the tests' failures and result line
# too), the bench's JSON and HTML, times.txt, full.metrics.json, population.sweep.json, summary.md.
#
#   bash bench/gpu/pack.sh          # here, once: makes .gpu/ (about 40 MB)
#   bash bench/gpu/run.sh           # there, carrying .gpu (node_modules comes from it)
#   bash bench/gpu/run.sh --smoke   # anywhere: the same steps with 100-step schedules
set -uo pipefail
cd "$(dirname "$0")/../.."
smoke=0
[ "${1:-}" = "--smoke" ] && smoke=1
out="${OUT:-bench/results/gpu-$(date -u +%Y-%m-%dT%H%M%S)}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
exec > >(tee -a "$out/gpu.log") 2>&1
step() { printf '\n== %s (%s)\n' "$*" "$(date -u +%T)"; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

step "tools"
if [ -d .gpu/debs ] && ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1'; then
  for f in .gpu/debs/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
if [ -f .gpu/deno.xz ]; then
  mkdir -p /tmp/gpu-bin
  xz -dc .gpu/deno.xz >/tmp/gpu-bin/deno && chmod +x /tmp/gpu-bin/deno
  export PATH="/tmp/gpu-bin:$PATH"
fi
if [ ! -d node_modules/.deno ] && [ -f .gpu/node_modules.tar.xz ]; then
  tar -xJf .gpu/node_modules.tar.xz
fi
if [ -f .gpu/npm_registry.tar.xz ]; then
  export DENO_DIR="${DENO_DIR:-/tmp/gpu-deno-dir}"
  mkdir -p "$DENO_DIR" && tar -xJf .gpu/npm_registry.tar.xz -C "$DENO_DIR"
fi
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}" DENO_NO_UPDATE_CHECK=1
deno --version | head -1 || { echo "error: no deno: run bench/gpu/pack.sh here first"; exit 1; }
nvidia-smi -L 2>/dev/null || echo "(no nvidia-smi)"
adapter() {
  deno eval 'const a = await navigator.gpu?.requestAdapter();
console.log(a ? (a.info.description || a.info.vendor || "unnamed") : "none")' 2>&1 | tail -n 1
}
desc="$(adapter)"
nvidia=/usr/local/nvidia/share
if ! grep -qi nvidia <<<"$desc" && [ -f "$nvidia/vulkan/icd.d/nvidia_icd.json" ]; then
  export VK_DRIVER_FILES="$nvidia/vulkan/icd.d/nvidia_icd.json"
  export __EGL_VENDOR_LIBRARY_FILENAMES="$nvidia/glvnd/egl_vendor.d/10_nvidia.json"
  export DENO_WEBGPU_BACKEND="${DENO_WEBGPU_BACKEND:-vulkan}"
  desc="$(adapter)"
fi
echo "adapter: $desc"
[ "$desc" = none ] && { echo "error: no WebGPU adapter"; exit 1; }

step "data"
if [ -z "${CIFAR10_DIR:-}" ] || [ ! -f "$CIFAR10_DIR/data_batch_1.bin" ]; then
  export CIFAR10_DIR=/tmp/cifar-synthetic
  deno run -A bench/gpu/synthetic.ts "$CIFAR10_DIR" || exit 1
  echo "(synthetic data: the accuracies below are chance; the times are those of CIFAR-10)"
fi
echo "CIFAR10_DIR=$CIFAR10_DIR"

# the experiments, shortened to 100 steps with --smoke
configs=/tmp/gpu-configs
mkdir -p "$configs"
for name in full full-population; do
  deno eval "const c = JSON.parse(Deno.readTextFileSync('experiments/$name.json'));
if ($smoke) { c.train.schedule.stepSize = 50; c.train.schedule.cycles = 1; c.train.evalEvery = 50; }
Deno.writeTextFileSync('$configs/$name.json', JSON.stringify(c, null, 2));"
done

py="$(command -v python3 || echo /usr/bin/python3)"
step "bench (peers numpy, torch-cpu, torch-cuda; python $py)"
bench_args=(--peers=numpy,torch-cpu,torch-cuda "--python=$py" "--out=$out")
# the population is timed below, as the experiments run it; --quick with --smoke
if [ "$smoke" = 1 ]; then bench_args+=(--quick); else bench_args+=(--only=peak,kernels,steps,epochs); fi
timeout 230 deno task bench "${bench_args[@]}"
echo "bench: exit $?"

runs=/tmp/gpu-runs
step "full.json end to end"
t0=$(now)
timeout 80 deno task train --config "$configs/full.json" --out "$runs" --overwrite --no-report
rc=$?
t1=$(now)
echo "full.json: exit $rc, $(elapsed "$t0" "$t1") s end to end" | tee "$out/times.txt"
cp "$runs/full/metrics.json" "$out/full.metrics.json" 2>/dev/null

step "full-population.json: 16 λ of full.json as one population"
t0=$(now)
timeout 110 deno task train --config "$configs/full-population.json" --out "$runs" --overwrite \
  --no-report
rc=$?
t1=$(now)
echo "full-population.json: exit $rc, $(elapsed "$t0" "$t1") s end to end" | tee -a "$out/times.txt"
cp "$runs/full-population/sweep.json" "$out/population.sweep.json" 2>/dev/null

step "kernel tests against their float64 twins"
tests=(tests/matmul_test.ts tests/matmul_gpu_test.ts tests/tail_test.ts tests/gather_test.ts
  tests/softmax_ce_test.ts tests/reduce_test.ts tests/update_test.ts tests/batchnorm_test.ts
  tests/copy_test.ts tests/dropout_test.ts tests/probe_test.ts tests/placement_test.ts)
[ "$smoke" = 1 ] && tests=(tests/copy_test.ts tests/probe_test.ts)
NO_COLOR=1 timeout 150 deno test -A --parallel "${tests[@]}" 2>&1 | grep -v ' \.\.\. ok ('
echo "tests: exit ${PIPESTATUS[0]}"

step "summary"
deno run -A bench/gpu/summary.ts "$out" | tee "$out/summary.md"
# let tee write the last lines of gpu.log before the device tool collects $OUT
exec >&- 2>&-
sleep 1
