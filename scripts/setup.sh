#!/usr/bin/env bash
# Installs every Debian package grm needs. Idempotent: does nothing when all are present,
# runs `apt-get update` at most once, and only when a package is missing.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config
  libtorch-dev libopenblas0-pthread
  nlohmann-json3-dev libcpp-httplib-dev libcli11-dev libspdlog-dev libfmt-dev
  libsentencepiece-dev libpcre2-dev libgtest-dev libgmock-dev libbenchmark-dev
  gnuplot-nox
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
else
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "setup: installing ${missing[*]}"
  if ! $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"; then
    $SUDO apt-get update
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
  fi
fi

# Debian's default BLAS alternative is the slow reference BLAS; point it at OpenBLAS (pthread).
if command -v update-alternatives >/dev/null; then
  for alt in libblas.so.3-x86_64-linux-gnu liblapack.so.3-x86_64-linux-gnu; do
    target=$(update-alternatives --list "$alt" 2>/dev/null | grep -m1 openblas-pthread || true)
    current=$(readlink -f "/etc/alternatives/$alt" 2>/dev/null || true)
    if [ -n "$target" ] && [ "$(readlink -f "$target")" != "$current" ]; then
      ${SUDO:-} update-alternatives --set "$alt" "$target"
    fi
  done
fi

# Reference peers used by tests (e.g. @huggingface/tokenizers for tokenizer parity), pinned in
# tools/node/package.json; installed once into tools/node/node_modules.
if [ -f tools/node/package.json ] && [ ! -d tools/node/node_modules ] && command -v npm >/dev/null; then
  echo "setup: npm install in tools/node"
  (cd tools/node && npm install --no-audit --no-fund --loglevel=error)
fi
