#!/usr/bin/env bash
# Installs what building and testing onestack needs on Debian 12, and nothing that is
# already there. Safe to run again.
set -euo pipefail

need_apt=()
have() { command -v "$1" >/dev/null 2>&1; }
pkg_missing() { ! dpkg -s "$1" >/dev/null 2>&1; }

have cc || need_apt+=(build-essential)
have pkg-config || need_apt+=(pkg-config)
have curl || need_apt+=(curl ca-certificates)
have script || need_apt+=(bsdutils)          # script(1): the e2e tests answer password prompts on a pty
have qemu-img || need_apt+=(qemu-utils)        # the image tests make real qcow2 files
have ip || need_apt+=(iproute2)                 # the network agent: bridges, taps, VXLAN, namespaces
have nft || need_apt+=(nftables)               # the network agent: security groups
have dnsmasq || need_apt+=(dnsmasq-base)       # the network agent: DHCP for subnets that want it
have arping || need_apt+=(iputils-arping)       # the network agent: gratuitous ARP for floating IPs
[ -x /bin/busybox ] || need_apt+=(busybox-static) # data-plane tests: udhcpc in a namespace
# scripts/build-test-guest.sh: the test guest's disk and CD images, made without loop devices
have mcopy || need_apt+=(mtools)
have syslinux || need_apt+=(syslinux)
[ -f /usr/lib/syslinux/mbr/mbr.bin ] || need_apt+=(syslinux-common)
[ -f /usr/lib/ISOLINUX/isolinux.bin ] || need_apt+=(isolinux)
have mkfs.vfat || [ -x /usr/sbin/mkfs.vfat ] || need_apt+=(dosfstools)
have sfdisk || [ -x /usr/sbin/sfdisk ] || need_apt+=(fdisk)
have genisoimage || need_apt+=(genisoimage)    # also makes config drives in the tests
have qemu-system-x86_64 || need_apt+=(qemu-system-x86) # the compute driver: QEMU guests (TCG where there is no KVM)
have ssh-keygen || need_apt+=(openssh-client)   # keypairs generated for clients below microversion 2.92
# The integration suite runs a second time on PostgreSQL, on a server of its own that it
# starts from these programs (not the system's cluster).
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || need_apt+=(postgresql)
python3 -m venv --help >/dev/null 2>&1 || need_apt+=(python3-venv)
have python3 || need_apt+=(python3)

if [ ${#need_apt[@]} -gt 0 ]; then
  echo "==> installing Debian packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
  # Debian's qemu-system-x86 can displace a newer qemu-utils (backports): put qemu-img back.
  if ! have qemu-img; then
    echo "==> installing Debian packages: qemu-utils (replaced by qemu-system-x86)"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq qemu-utils >/dev/null
  fi
fi

if ! have cargo; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    echo "==> cargo is in ~/.cargo/bin; add it to PATH (source ~/.cargo/env)" >&2
  else
    echo "==> installing the Rust toolchain with rustup"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component clippy,rustfmt
  fi
  exit 1
fi
