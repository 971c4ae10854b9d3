#!/usr/bin/env bash
# Prepares .device/ (git-ignored) for tooling/gpu/run-h200.sh, HERE (a machine with Node 20, pnpm install done,
# apt-get): esbuild bundles of the GPU entry and the m2 CLI, an xz-compressed Node binary, the Vulkan loader's
# Debian package, the `webgpu` package's dawn.node (xz) and JS, and tfjs's wasm files. Then call the device tool:
#   run(command: "bash tooling/gpu/run-h200.sh", carry: [".device"], kind: "nvidia-h200")
# The device tool carries at most 64 MiB with the working tree; this folder is about 33 MB.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
dev="$root/.device"
mkdir -p "$dev"
grep -qxF '/.device/' "$root/.gitignore" 2>/dev/null || { mkdir -p "$root/.git/info"; grep -qxF '/.device/' "$root/.git/info/exclude" 2>/dev/null || echo '/.device/' >> "$root/.git/info/exclude"; }

# 1. Bundles (fast; always rebuilt).
node "$root/tooling/gpu/build.mjs" "$dev"

# 2. Node itself, xz-compressed once (~24 MB from ~99 MB).
if [ ! -s "$dev/node.xz" ] || [ "$(cat "$dev/node.version" 2>/dev/null)" != "$(node --version)" ]; then
  xz -T2 -9 < "$(command -v node)" > "$dev/node.xz.tmp" && mv "$dev/node.xz.tmp" "$dev/node.xz"
  node --version > "$dev/node.version"
fi

# 3. The Vulkan loader (libvulkan.so.1) and what NVIDIA's Vulkan driver library (libGLX_nvidia.so.0) loads
#    (libglvnd's libGLdispatch, X11 client libraries), as Debian packages unpacked on the device, not installed.
debs="libvulkan1 libglvnd0 libglx0 libegl1 libopengl0 libgl1 libgles2 libx11-6 libx11-data libxext6 libxcb1 libxau6 libxdmcp6 libbsd0 libmd0"
missing=""
for p in $debs; do ls "$dev/${p}_"*.deb >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  (cd "$dev" && apt-get download $missing >/dev/null 2>&1) || { apt-get update >/dev/null 2>&1 && (cd "$dev" && apt-get download $missing); }
fi

# 4. webgpu (Dawn) for linux-x64: index.js + package.json as is, dawn.node xz-compressed (~21 MB → ~6 MB).
webgpu_dir="$(node -e "const {createRequire}=require('module');const r=createRequire('$root/packages/monarch-core/package.json');console.log(require('path').dirname(r.resolve('webgpu/package.json')))")"
mkdir -p "$dev/webgpu"
cp "$webgpu_dir/index.js" "$webgpu_dir/package.json" "$dev/webgpu/"
if [ ! -s "$dev/webgpu/dawn.node.xz" ] || [ "$webgpu_dir/dist/linux-x64/dawn.node" -nt "$dev/webgpu/dawn.node.xz" ]; then
  xz -T2 -9 < "$webgpu_dir/dist/linux-x64/dawn.node" > "$dev/webgpu/dawn.node.xz.tmp" && mv "$dev/webgpu/dawn.node.xz.tmp" "$dev/webgpu/dawn.node.xz"
fi

# 5. tfjs wasm binaries (for --backend wasm / cpu references on the device).
wasm_dir="$(node -e "const {createRequire}=require('module');const r=createRequire('$root/packages/monarch-core/package.json');console.log(require('path').dirname(r.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm')))")"
mkdir -p "$dev/wasm"
cp "$wasm_dir"/*.wasm "$dev/wasm/"

# 6. The m2 commands run-h200.sh runs after the checks.
cp "$root/tooling/gpu/m2-runs.txt" "$dev/m2-runs.txt"

du -sh "$dev"
ls -la "$dev"
