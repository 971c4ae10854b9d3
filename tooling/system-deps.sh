#!/usr/bin/env bash
# Debian packages the tests use. Idempotent; does nothing when everything is present.
set -uo pipefail
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)  # also SwiftShader's Vulkan driver: the webgpu kernel tests run on it
dpkg -s libvulkan1 >/dev/null 2>&1 || need+=(libvulkan1)  # the Vulkan loader Dawn (webgpu in Node) opens
[ -d /usr/share/datasets/fashion-mnist ] || need+=(dataset-fashion-mnist)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then echo "system-deps: missing ${need[*]} (run as root to install)"; exit 1; fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
