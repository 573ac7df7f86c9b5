#!/usr/bin/env bash
# Reserve hugepages for spanfeed's DPDK mempool and mount hugetlbfs.
#
#   setup-hugepages.sh [COUNT] [SIZE]     SIZE = 2M (default) or 1G
#   setup-hugepages.sh 1024               1024 x 2 MiB = 2 GiB (default COUNT)
#   setup-hugepages.sh 4 1G               4 x 1 GiB
#   NODE=0 setup-hugepages.sh 1024        reserve on one NUMA node only (the NIC's)
#   MOUNT=/dev/hugepages                  where hugetlbfs is mounted (default)
#
# Idempotent: sets the count (raising or lowering it to COUNT), mounts only if
# not mounted, and prints what it did and what the kernel actually granted.
# Not persistent across reboots: add "vm.nr_hugepages = COUNT" to
# /etc/sysctl.d/ (2 MiB) or "default_hugepagesz=1G hugepagesz=1G hugepages=N"
# to the kernel command line (1 GiB pages are reliably available only when
# reserved at boot), and an fstab line "nodev MOUNT hugetlbfs pagesize=SIZE 0 0".
#
# How many: the mempool (about 2.4 KiB per mbuf with the default data_room;
# spanfeed sizes it from rings.size x RX lcores x workers, see docs/tuning.md)
# plus ~25% for rings and the EAL. deploy/spanfeed-production.yaml needs
# ~650 MiB; 2 GiB leaves room. Flow tables and reassembly buffers are ordinary
# memory, not hugepages.
#
# Note: spanfeed adds "--no-huge" itself for a raw EAL source when the
# *default* hugepage size has no free pages (HugePages_Free in
# /proc/meminfo). With 1 GiB pages that are not the default size, pass
# "--huge-dir MOUNT" in capture.eal (the sample config does) so the EAL uses
# them.
set -euo pipefail

COUNT=${1:-1024}
SIZE=${2:-2M}
MOUNT=${MOUNT:-/dev/hugepages}
NODE=${NODE:-}

case "$SIZE" in
  2M|2m|2048k|2048kB) kb=2048; SIZE=2M ;;
  1G|1g|1048576k|1048576kB) kb=1048576; SIZE=1G ;;
  *) echo "setup-hugepages: SIZE must be 2M or 1G, not '$SIZE'" >&2; exit 2 ;;
esac
if ! [[ "$COUNT" =~ ^[0-9]+$ ]]; then
  echo "setup-hugepages: COUNT must be a number, not '$COUNT'" >&2; exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "setup-hugepages: run as root" >&2; exit 1
fi

if [ -n "$NODE" ]; then
  nr=/sys/devices/system/node/node$NODE/hugepages/hugepages-${kb}kB/nr_hugepages
  where="NUMA node $NODE"
else
  nr=/sys/kernel/mm/hugepages/hugepages-${kb}kB/nr_hugepages
  where="all NUMA nodes"
fi
if [ ! -w "$nr" ]; then
  echo "setup-hugepages: $nr not available: the kernel or CPU does not offer $SIZE pages" \
       "(1G needs the pdpe1gb CPU flag; check /sys/kernel/mm/hugepages/)" >&2
  exit 1
fi

before=$(cat "$nr")
if [ "$before" -eq "$COUNT" ]; then
  echo "setup-hugepages: $COUNT x $SIZE pages already reserved ($where)"
else
  # Compact memory first: hugepages need physically contiguous free memory.
  echo 1 > /proc/sys/vm/compact_memory 2>/dev/null || true
  echo "$COUNT" > "$nr"
  after=$(cat "$nr")
  echo "setup-hugepages: $SIZE pages ($where): $before -> $after (asked for $COUNT)"
  if [ "$after" -lt "$COUNT" ]; then
    echo "setup-hugepages: warning: the kernel granted only $after of $COUNT pages" \
         "(memory too fragmented: reserve at boot instead, see the header of this script)" >&2
  fi
fi

if mountpoint -q "$MOUNT" && [ "$(findmnt -n -o FSTYPE "$MOUNT")" = hugetlbfs ]; then
  opts=$(findmnt -n -o OPTIONS "$MOUNT")
  echo "setup-hugepages: hugetlbfs already mounted on $MOUNT ($opts)"
  want=$([ "$SIZE" = 1G ] && echo pagesize=1024M || echo pagesize=2M)
  if [[ "$opts" == *pagesize=* && "$opts" != *"$want"* ]]; then
    echo "setup-hugepages: warning: $MOUNT serves another page size; mount $SIZE pages" \
         "elsewhere (MOUNT=/dev/hugepages-$SIZE $0 $COUNT $SIZE) and pass" \
         "--huge-dir there in capture.eal" >&2
  fi
else
  mkdir -p "$MOUNT"
  mount -t hugetlbfs -o "pagesize=$SIZE" nodev "$MOUNT"
  echo "setup-hugepages: mounted hugetlbfs (pagesize=$SIZE) on $MOUNT"
fi

grep -E '^(HugePages_(Total|Free)|Hugepagesize)' /proc/meminfo | sed 's/^/setup-hugepages:   /'
for d in /sys/kernel/mm/hugepages/hugepages-*; do
  echo "setup-hugepages:   $(basename "$d"): $(cat "$d/nr_hugepages") reserved, $(cat "$d/free_hugepages") free"
done
