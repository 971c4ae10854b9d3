#!/usr/bin/env bash
# Runs ON the H200 device machine (no Node, no registry there), from the repository root, with .device/ carried:
#   run(command: "bash tooling/gpu/run-h200.sh", carry: [".device"], kind: "nvidia-h200")
# after `bash tooling/gpu/prepare.sh` here. It unpacks Node, dawn.node and the Vulkan loader into /tmp,
# points VK_DRIVER_FILES at the NVIDIA ICD json, runs the GPU checks (gpu-entry.mjs) and then each m2 command of
# .device/m2-runs.txt. Outputs go to $OUT: gpu-results.json, gpu-entry.log, m2-runs.log, env.txt (+ what the
# m2 commands write there). Env: M2_GPU_SKIP_CHECKS=1 skips the checks; M2_GPU_PROBE_ONLY=1 stops after the set-up probe;
# M2_GPU_ENTRY_ARGS (e.g. --long-only: only the tall-matMul and 16K/32K long-convolution checks); M2_GPU_ENTRY_TIMEOUT (s, default 240),
# M2_GPU_TRAIN_ARGS / M2_GPU_TRAIN_TIMEOUT (training check, below), M2_GPU_RUN_TIMEOUT (s per m2 command, default 150); M2_GPU_RUNS (a runs file relative to the repository root, default
# .device/m2-runs.txt, e.g. tooling/gpu/m2-runs-smoke.txt).
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
dev="$root/.device"
OUT="${OUT:-$root/.device-out}"
mkdir -p "$OUT"
work=/tmp/m2-gpu
rm -rf "$work"
mkdir -p "$work/node_modules/webgpu/dist/linux-x64" "$work/vulkan"

unxz_to() { # unxz_to FILE.xz DEST (xz if present, else Python's lzma)
  if command -v xz >/dev/null 2>&1; then xz -dc "$1" > "$2"
  else python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"; fi
}

unxz_to "$dev/node.xz" "$work/node" && chmod +x "$work/node"
unxz_to "$dev/webgpu/dawn.node.xz" "$work/node_modules/webgpu/dist/linux-x64/dawn.node"
cp "$dev/webgpu/index.js" "$dev/webgpu/package.json" "$work/node_modules/webgpu/"
cp "$dev"/*.mjs "$work/"

# Vulkan loader and the libraries NVIDIA's libGLX_nvidia.so.0 needs (libGLdispatch, X11 client libraries):
# the carried Debian packages, unpacked into /tmp (not installed) and put on LD_LIBRARY_PATH.
for deb in "$dev"/*.deb; do
  if command -v dpkg-deb >/dev/null 2>&1; then dpkg-deb -x "$deb" "$work/vulkan"
  else (mkdir -p "$work/ar" && cd "$work/ar" && ar x "$deb" && tar xf data.tar.* -C "$work/vulkan" && rm -f ./*); fi
done
export LD_LIBRARY_PATH="$work/vulkan/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# NVIDIA's Vulkan ICD: try each candidate json (the driver's, else one written for libGLX_nvidia.so.0) with a
# one-line adapter probe and keep the first that gives an adapter. If none does with the libraries on
# LD_LIBRARY_PATH, unpack the carried packages into / and run ldconfig (the device tool's own recipe), then retry.
cat > "$work/probe.mjs" <<'PROBE'
import { create, globals } from 'webgpu';
Object.assign(globalThis, globals);
const adapter = await create([]).requestAdapter();
console.log(adapter ? `ADAPTER ${adapter.info.vendor} ${adapter.info.architecture} ${adapter.info.device} ${adapter.info.description}` : 'NOADAPTER');
process.exit(0);
PROBE
cat > "$work/nvidia_icd_abs.json" <<JSON
{"file_format_version":"1.0.1","ICD":{"library_path":"$(ldconfig -p 2>/dev/null | grep -m1 libGLX_nvidia.so.0 | sed 's/.*=> //')","api_version":"1.3"}}
JSON
candidates="$(find /usr/local/nvidia/share/vulkan /usr/share/vulkan /etc/vulkan /usr/local/share/vulkan -name 'nvidia_icd*.json' 2>/dev/null) $work/nvidia_icd_abs.json"
icd=""
for attempt in ld_library_path root_unpack; do
  if [ "$attempt" = root_unpack ]; then
    command -v nvidia-smi >/dev/null 2>&1 || break # only on the GPU machine, never on a workstation
    echo "no adapter with LD_LIBRARY_PATH; unpacking the carried packages into / (ldconfig)"
    for deb in "$dev"/*.deb; do dpkg -x "$deb" / 2>/dev/null; done; ldconfig
  fi
  for candidate in $candidates; do
    result="$(cd "$work" && VK_DRIVER_FILES="$candidate" VK_ICD_FILENAMES="$candidate" timeout 60 ./node probe.mjs 2>&1 | tail -1)"
    echo "probe [$attempt] $candidate: $result"; cat "$candidate"; echo
    case "$result" in ADAPTER*) icd="$candidate"; break 2;; esac
  done
done
if [ -z "$icd" ]; then
  (cd "$work" && VK_LOADER_DEBUG=error,warn,driver VK_DRIVER_FILES="${candidates%% *}" timeout 60 ./node probe.mjs 2>&1 | tail -40)
fi
[ -n "$icd" ] && export VK_DRIVER_FILES="$icd" VK_ICD_FILENAMES="$icd"
export M2_TFJS_WASM_DIR="$dev/wasm/"

{
  date -u; uname -a; "$work/node" --version
  echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"; echo "VK_DRIVER_FILES=${VK_DRIVER_FILES:-}"
  for lib in libGLX_nvidia.so.0 libnvidia-glcore.so; do
    path="$(ldconfig -p 2>/dev/null | grep -m1 "$lib" | sed 's/.*=> //')"
    [ -z "$path" ] && path="$(find /usr/local/nvidia /usr/lib/x86_64-linux-gnu -name "$lib*" 2>/dev/null | head -1)"
    echo "$lib: ${path:-not found}"; [ -n "$path" ] && ldd "$path" | grep -i 'not found'
  done
  ls /usr/share/vulkan/icd.d /etc/vulkan/icd.d /usr/local/nvidia/share/vulkan/icd.d 2>/dev/null
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

# setupBackend's own driver search (no VK_DRIVER_FILES in the environment), then the normal runs.
(cd "$work" && env -u VK_DRIVER_FILES -u VK_ICD_FILENAMES timeout 120 ./node gpu-entry.mjs --probe) 2>&1 | tail -3
[ "${M2_GPU_PROBE_ONLY:-0}" = 1 ] && exit 0

# M2_GPU_TRAIN_ARGS (e.g. "--train-steps 3"; " " for the defaults): the training check (entry --train-only) first, on
# webgpu alone: 3 Adam steps of M2-BERT-base at L = 2048 from the seeded weights, compared with the committed CPU
# references in tooling/gpu/fixtures (computed on the workstation: no CPU training here).
# Output: $OUT/gpu-training.json (its log goes to $OUT/gpu-entry.log: at most 8 files come back from the device).
# Several checks in one call: separate their argument sets with ';' (outputs gpu-training.json, gpu-training-2.json, …).
if [ -n "${M2_GPU_TRAIN_ARGS:-}" ]; then
  IFS=';' read -ra train_sets <<< "$M2_GPU_TRAIN_ARGS"
  for i in "${!train_sets[@]}"; do
    suffix=""; [ "$i" -gt 0 ] && suffix="-$((i + 1))"
    echo "== training check$suffix:${train_sets[$i]}" | tee -a "$OUT/gpu-entry.log"
    (cd "$work" && M2_GPU_TRAIN_FIXTURES="$root/tooling/gpu/fixtures" timeout "${M2_GPU_TRAIN_TIMEOUT:-180}" ./node gpu-entry.mjs "$OUT/gpu-training$suffix.json" --train-only ${train_sets[$i]}) 2>&1 | tee -a "$OUT/gpu-entry.log"
  done
fi

if [ "${M2_GPU_SKIP_CHECKS:-0}" != 1 ]; then
  (cd "$work" && timeout "${M2_GPU_ENTRY_TIMEOUT:-240}" ./node gpu-entry.mjs "$OUT/gpu-results.json" ${M2_GPU_ENTRY_ARGS:-}) 2>&1 | tee -a "$OUT/gpu-entry.log"
fi

runs="$root/${M2_GPU_RUNS:-.device/m2-runs.txt}"
if [ -f "$work/m2.mjs" ] && [ -f "$runs" ]; then
  grep -v '^\s*\(#\|$\)' "$runs" | while IFS= read -r line; do
    eval "args=($line)"
    envs=() # leading NAME=value words set environment variables for that command
    while [ "${#args[@]}" -gt 0 ] && [[ "${args[0]}" =~ ^[A-Z_][A-Z0-9_]*= ]]; do envs+=("${args[0]}"); args=("${args[@]:1}"); done
    echo "== ${envs[*]} m2 ${args[*]}" | tee -a "$OUT/m2-runs.log"
    (cd "$root" && env "${envs[@]}" timeout "${M2_GPU_RUN_TIMEOUT:-150}" "$work/node" "$work/m2.mjs" "${args[@]}") 2>&1 | tee -a "$OUT/m2-runs.log"
  done
fi

