#!/usr/bin/env bash
# Installs every Debian 12 package spanfeed needs to build, test and demo.
# Idempotent: installs only what is missing; safe to run on every invocation.
set -euo pipefail

PACKAGES=(
  build-essential g++ pkg-config meson ninja-build python3
  libdpdk-dev dpdk libpcap-dev
  libhyperscan-dev librdkafka-dev prometheus-cpp-dev zlib1g-dev
  libyaml-cpp-dev libcli11-dev libmurmurhash-dev nlohmann-json3-dev
  libssl-dev libnghttp2-dev openssl
  libprotobuf-dev protobuf-compiler libsnappy-dev libcurl4-openssl-dev
  libgtest-dev libgmock-dev libbenchmark-dev clang libclang-rt-14-dev
  tshark kcat tcpdump tcpreplay iproute2 procps curl python3-jsonschema prometheus
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture; answer for it.
echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
