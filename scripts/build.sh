#!/usr/bin/env bash
# Installs dependencies (idempotent) and builds spanfeed into ./build.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
if [ ! -f build/build.ninja ]; then
  meson setup build --buildtype=release -Db_ndebug=true >/dev/null
fi
ninja -C build -j"$(nproc)" >/dev/null
