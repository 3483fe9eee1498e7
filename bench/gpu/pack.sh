#!/usr/bin/env bash
# Make .gpu/, what bench/gpu/run.sh needs on a GPU machine that reaches no package registry:
#   .gpu/deno.xz              this machine's Deno 2 binary, compressed (about 30 of its 96 MB)
#   .gpu/node_modules.tar.xz  the project's npm packages (deno.json's imports; not the peers')
#   .gpu/npm_registry.tar.xz  Deno's cached npm metadata, so that Deno resolves node_modules
#                             there without asking the registry (which it cannot reach)
#   .gpu/debs/                the Vulkan loader (libvulkan1), unpacked there where it is missing
# Run here, in a checkout with Deno, once; then carry .gpu to the GPU machine with the tree
# (the device tool: carry [".gpu"]) and run `bash bench/gpu/run.sh` there. .gpu/ is ignored by git.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v deno >/dev/null || { echo "error: no deno on PATH (npm install -g deno@2)"; exit 1; }
command -v xz >/dev/null || { echo "error: no xz (apt-get install xz-utils)"; exit 1; }
mkdir -p .gpu/debs
deno install >/dev/null
tar -cJf .gpu/node_modules.tar.xz --exclude='node_modules/.deno/@tensorflow*' \
  --exclude='node_modules/@tensorflow' node_modules
deno_dir="$(deno info --json | sed -n 's/^ *"denoDir": "\(.*\)",$/\1/p')"
(cd "$deno_dir" && find npm -name registry.json -print0 | tar -cJf - --null -T -) \
  >.gpu/npm_registry.tar.xz
xz -T0 -6 -c "$(readlink -f "$(command -v deno)")" >.gpu/deno.xz.tmp
mv .gpu/deno.xz.tmp .gpu/deno.xz
(cd .gpu/debs && rm -f ./*.deb && apt-get -o APT::Sandbox::User=root download libvulkan1 >/dev/null)
du -ch .gpu | tail -n 1
