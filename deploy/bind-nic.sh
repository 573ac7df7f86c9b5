#!/usr/bin/env bash
# Bind the capture NIC to vfio-pci for spanfeed (DPDK), or give it back to its
# kernel driver. Uses dpdk-devbind.py from the Debian "dpdk" package
# (scripts/install-deps.sh installs it).
#
#   bind-nic.sh status                          NICs and their drivers
#   bind-nic.sh bind 0000:3b:00.0 [--force]     kernel driver -> vfio-pci
#   bind-nic.sh unbind 0000:3b:00.0 ixgbe       vfio-pci -> ixgbe (kernel)
#
# bind refuses (without --force) a NIC whose kernel interface is up or has an
# address or a route: that is likely the management interface, and taking it
# away cuts the box off. A SPAN port should be down, without addresses.
#
# Needs the IOMMU (intel_iommu=on iommu=pt / amd_iommu=on on the kernel command
# line). Without one, VFIO_NOIOMMU=1 bind-nic.sh bind ... enables vfio's
# unsafe no-IOMMU mode (no DMA isolation: lab use only).
# Not persistent across reboots: run it from a oneshot unit before
# spanfeed.service, or use driverctl (driverctl set-override PCI vfio-pci).
set -euo pipefail

usage() {
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

DEVBIND=${DEVBIND:-}
if [ -z "$DEVBIND" ]; then
  DEVBIND=$(command -v dpdk-devbind.py || command -v dpdk-devbind || true)
fi
if [ -z "$DEVBIND" ]; then
  echo "bind-nic: dpdk-devbind.py not found: apt-get install dpdk (or set DEVBIND=PATH)" >&2
  exit 1
fi

cmd=${1:-}
[ -n "$cmd" ] || usage
shift

need_root() {
  if [ "$(id -u)" -ne 0 ]; then echo "bind-nic: run as root" >&2; exit 1; fi
}

check_pci() {
  local pci=$1
  if [[ ! "$pci" =~ ^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$ ]]; then
    echo "bind-nic: '$pci' is not a full PCI address (DDDD:BB:DD.F, e.g. 0000:3b:00.0; see lspci -D)" >&2
    exit 2
  fi
  if [ ! -d "/sys/bus/pci/devices/$pci" ]; then
    echo "bind-nic: no PCI device $pci" >&2
    exit 1
  fi
}

current_driver() {
  local link=/sys/bus/pci/devices/$1/driver
  if [ -e "$link" ]; then basename "$(readlink -f "$link")"; else echo none; fi
}

# Kernel network interfaces of a PCI device (none once it is bound to vfio-pci).
ifaces_of() {
  local d=/sys/bus/pci/devices/$1/net
  if [ -d "$d" ]; then ls "$d"; fi
}

# Refuse to take a NIC the kernel is using: up, addressed, or routed.
safety_check() {
  local pci=$1 force=$2 busy=0 ifc
  for ifc in $(ifaces_of "$pci"); do
    local why=()
    if ip -o link show dev "$ifc" | grep -q '[<,]UP[,>]'; then why+=("is up"); fi
    if [ -n "$(ip -o addr show dev "$ifc" scope global)" ]; then why+=("has an address"); fi
    if [ -n "$(ip route show dev "$ifc" 2>/dev/null)" ] ||
       ip -6 route show dev "$ifc" 2>/dev/null | grep -vq '^fe80::/64\|^multicast'; then
      why+=("has routes")
    fi
    if [ ${#why[@]} -gt 0 ]; then
      echo "bind-nic: $pci is $ifc, which ${why[*]}" >&2
      ip -br addr show dev "$ifc" >&2 || true
      busy=1
    fi
  done
  if [ "$busy" -eq 1 ]; then
    if [ "$force" -eq 1 ]; then
      echo "bind-nic: --force: taking it anyway" >&2
    else
      echo "bind-nic: refusing: this looks like an interface in use (management?)." \
           "Bring it down and remove its addresses (ip link set $ifc down; ip addr flush dev $ifc)," \
           "or pass --force" >&2
      exit 1
    fi
  fi
}

case "$cmd" in
  status)
    "$DEVBIND" --status-dev net
    ;;
  bind)
    pci=${1:-}; [ -n "$pci" ] || usage
    force=0
    [ "${2:-}" = "--force" ] && force=1
    need_root
    check_pci "$pci"
    drv=$(current_driver "$pci")
    if [ "$drv" = vfio-pci ]; then
      echo "bind-nic: $pci is already bound to vfio-pci"
      exit 0
    fi
    safety_check "$pci" "$force"
    if [ "${VFIO_NOIOMMU:-0}" = 1 ]; then
      modprobe vfio enable_unsafe_noiommu_mode=1
      echo 1 > /sys/module/vfio/parameters/enable_unsafe_noiommu_mode
      echo "bind-nic: warning: vfio no-IOMMU mode (no DMA isolation)" >&2
    elif [ -z "$(ls -A /sys/kernel/iommu_groups 2>/dev/null)" ]; then
      echo "bind-nic: warning: no IOMMU groups: enable intel_iommu=on iommu=pt (or amd_iommu=on)" \
           "on the kernel command line, or use VFIO_NOIOMMU=1 (lab only)" >&2
    fi
    modprobe vfio-pci
    echo "bind-nic: $pci: $drv -> vfio-pci (give it back with: $0 unbind $pci $drv)"
    "$DEVBIND" --bind=vfio-pci "$pci"
    echo "bind-nic: $pci is now bound to $(current_driver "$pci");" \
         "NUMA node $(cat "/sys/bus/pci/devices/$pci/numa_node" 2>/dev/null || echo '?')"
    ;;
  unbind)
    pci=${1:-}; kdrv=${2:-}
    if [ -z "$pci" ] || [ -z "$kdrv" ]; then usage; fi
    need_root
    check_pci "$pci"
    drv=$(current_driver "$pci")
    if [ "$drv" = "$kdrv" ]; then
      echo "bind-nic: $pci is already bound to $kdrv"
      exit 0
    fi
    if pgrep -x spanfeed >/dev/null; then
      echo "bind-nic: warning: spanfeed is running; stop it first (systemctl stop spanfeed)" >&2
    fi
    modprobe "$kdrv" 2>/dev/null || true
    echo "bind-nic: $pci: $drv -> $kdrv"
    "$DEVBIND" --bind="$kdrv" "$pci"
    echo "bind-nic: $pci is now bound to $(current_driver "$pci"): interface(s) $(ifaces_of "$pci" | tr '\n' ' ')"
    ;;
  -h|--help|help)
    usage
    ;;
  *)
    usage
    ;;
esac
