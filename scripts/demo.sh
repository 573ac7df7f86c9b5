#!/usr/bin/env bash
# spanfeed's main job end to end on a bundled capture: installs what it
# needs, builds, and runs the capture through the EAL (net_pcap vdev) with two
# worker lcores, printing the per-worker summary and the balanced ledger.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
capture=${1:-tests/data/pcaps/mysql/171-mysql.pcap}
exec ./build/src/spanfeed --pcap "$capture" --workers 2 --job payload-sum
