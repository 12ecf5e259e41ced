#!/usr/bin/env bash
# Installs every Debian 12 package reprise needs, fetches SmolLM2-135M-Instruct into models/
# (scripts/fetch-models.sh; a no-op once it is there), then configures and builds reprise.
# Usage: scripts/setup.sh [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake ninja-build pkg-config git
  libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libcli11-dev libfmt-dev
  libpcre2-dev libsqlite3-dev libcpp-httplib-dev
  # Debian's cpp-httplib is built with CPPHTTPLIB_OPENSSL_SUPPORT (its pkg-config Cflags), so
  # httplib.h includes OpenSSL's headers: needed to compile src/serve although we serve plain HTTP.
  libssl-dev
  libcairo2-dev libreadline-dev libyaml-cpp-dev
  openmpi-bin libopenmpi-dev
  clang libclang-rt-14-dev clang-format
  python3 python3-pip python3-venv
  python3-dev python3-pybind11 pybind11-dev python3-pytest python3-numpy
  python3-pandas python3-matplotlib
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y --no-install-recommends "${missing[@]}"
fi

scripts/fetch-models.sh

[ "${1:-}" = "--no-build" ] && exit 0
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build
