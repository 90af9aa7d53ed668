#!/usr/bin/env bash
# Builds the tiny guest that the end-to-end tests boot under QEMU (TCG is enough: it reaches its
# marker line in seconds). Everything comes from Debian 12 packages: the cloud kernel and
# busybox-static are downloaded and unpacked into OUT_DIR/cache (never installed, so nothing
# lands in /boot); the image tools (mtools, syslinux, genisoimage...) are installed with apt.
# No root-only tricks: no loop devices, no mounts.
#
# usage: scripts/build-test-guest.sh [OUT_DIR]      (default: target/test-guest in the repository)
#
# Outputs in OUT_DIR:
#   vmlinuz, initrd.img  the kernel and the initramfs (gzip'd cpio newc): for qemu -kernel/-initrd,
#                        or as the kernel_id/ramdisk_id images of an instance
#   disk.img             a raw whole-disk image: MBR, one FAT16 partition booted by SYSLINUX
#   install.iso          an ISO9660 CD booted by ISOLINUX (El Torito)
# All three boot the same kernel and initramfs with "console=ttyS0 quiet". What the guest does
# (config drive, network, port 80, the marker line on ttyS0) is described in scripts/guest/init.
#
# Idempotent: when all outputs are newer than this script and scripts/guest/*, it does nothing.
# The downloaded .debs stay in OUT_DIR/cache, so later rebuilds are offline and use the same
# kernel; delete the cache to move to a newer one.
set -euo pipefail
export PATH=$PATH:/usr/sbin:/sbin # mkfs.vfat and sfdisk, for a user whose PATH lacks them

script=$(readlink -f "${BASH_SOURCE[0]}")
scripts_dir=${script%/*}
guest_dir=$scripts_dir/guest
repo=${scripts_dir%/*}
out=${1:-$repo/target/test-guest}
outputs=(vmlinuz initrd.img disk.img install.iso)

# Kernel command line of every boot method. ttyS0 is where the tests read the marker.
cmdline="console=ttyS0 quiet"

# Modules the guest loads, in this order (each after its dependencies, which are added from the
# modules' own "depends=" field). In Debian's cloud kernel these are all modules, not built in:
#   virtio_pci, virtio_net, virtio_blk   the NIC and disks QEMU/Nova give an instance
#   virtio_scsi                          a config drive or CD-ROM on virtio-scsi
#   ata_piix, sr_mod, isofs              the config drive as an IDE CD-ROM (i440fx "pc" machine;
#                                        the cloud kernel has no AHCI, so not on q35's SATA)
#   button, evdev                        the ACPI power button, seen by acpid as an input device
# ata_piix comes before sr_mod: insmod returns once libata has probed its ports, so sr_mod then
# binds the CD-ROM at once and /dev/sr0 exists when /init looks for the config drive.
modules=(virtio_pci virtio_net virtio_blk virtio_scsi ata_piix sr_mod isofs button evdev)

disk_mib=32            # disk.img size; the kernel is ~14 MiB, the initramfs ~2 MiB
part_start=2048        # first sector of the FAT partition (1 MiB, the usual alignment)

syslinux_mbr=/usr/lib/syslinux/mbr/mbr.bin
syslinux_modules=/usr/lib/syslinux/modules/bios
isolinux_bin=/usr/lib/ISOLINUX/isolinux.bin

step() { echo "==> $*"; }
die() { echo "build-test-guest: $*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

up_to_date() {
    local o i
    for o in "${outputs[@]}"; do
        [ -f "$out/$o" ] || return 1
        for i in "$script" "$guest_dir"/*; do
            [ "$out/$o" -nt "$i" ] || return 1
        done
    done
}

sudo_cmd() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# apt-get update at most once, and only when an apt step failed: the lists may be missing on a
# fresh machine or stale (a superseded .deb is gone from the mirror).
apt_updated=0
apt_update() {
    [ "$apt_updated" -eq 0 ] || return 0
    step "apt-get update"
    sudo_cmd apt-get update -qq
    apt_updated=1
}
with_apt_retry() {
    "$@" 2>/dev/null || { apt_update && "$@"; }
}

ensure_host_tools() {
    local pkgs=()
    have mcopy || pkgs+=(mtools)                      # FAT files without mounting
    have syslinux || pkgs+=(syslinux)                 # the mtools-based SYSLINUX installer
    [ -f "$syslinux_mbr" ] || pkgs+=(syslinux-common) # mbr.bin, ldlinux.c32
    [ -f "$isolinux_bin" ] || pkgs+=(isolinux)
    have mkfs.vfat || [ -x /usr/sbin/mkfs.vfat ] || pkgs+=(dosfstools)
    have sfdisk || [ -x /usr/sbin/sfdisk ] || pkgs+=(fdisk)
    have genisoimage || pkgs+=(genisoimage)
    have dpkg-deb || die "dpkg-deb not found: this script needs Debian"
    if [ ${#pkgs[@]} -gt 0 ]; then
        step "installing Debian packages: ${pkgs[*]}"
        with_apt_retry sudo_cmd env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
    fi
}

# apt_download PKG: fetches PKG's .deb into the current directory.
apt_download() {
    local opts=(-qq)
    # As root, apt drops to the _apt user, who cannot write here; it would only warn.
    [ "$(id -u)" -ne 0 ] || opts+=(-o APT::Sandbox::User=root)
    apt-get "${opts[@]}" download "$1"
}

# The real kernel package behind the linux-image-cloud-amd64 metapackage.
kernel_package() {
    apt-cache depends linux-image-cloud-amd64 |
        awk '$1 == "Depends:" && $2 ~ /^linux-image-.*-cloud-amd64$/ { print $2; found = 1; exit }
             END { exit !found }'
}

# Fills OUT_DIR/cache with the kernel and busybox-static .debs, unless they are there already.
# Sets kernel_deb and busybox_deb.
fetch_debs() {
    local cache=$out/cache pkg
    mkdir -p "$cache"
    kernel_deb=$(find "$cache" -maxdepth 1 -name 'linux-image-*-cloud-amd64_*.deb' | sort -V | tail -n1)
    busybox_deb=$(find "$cache" -maxdepth 1 -name 'busybox-static_*.deb' | sort -V | tail -n1)
    [ -z "$kernel_deb" ] || [ -z "$busybox_deb" ] || return 0

    # apt-get download writes into the current directory.
    cd "$cache"
    apt-cache show linux-image-cloud-amd64 busybox-static >/dev/null 2>&1 || apt_update
    if [ -z "$kernel_deb" ]; then
        pkg=$(kernel_package) || die "cannot resolve linux-image-cloud-amd64"
        step "downloading $pkg"
        with_apt_retry apt_download "$pkg"
        kernel_deb=$(find "$cache" -maxdepth 1 -name "${pkg}_*.deb" | sort -V | tail -n1)
    fi
    if [ -z "$busybox_deb" ]; then
        step "downloading busybox-static"
        with_apt_retry apt_download busybox-static
        busybox_deb=$(find "$cache" -maxdepth 1 -name 'busybox-static_*.deb' | sort -V | tail -n1)
    fi
    cd - >/dev/null
    if [ ! -f "$kernel_deb" ] || [ ! -f "$busybox_deb" ]; then
        die "download failed"
    fi
}

unpack_debs() {
    step "unpacking ${kernel_deb##*/} and ${busybox_deb##*/}"
    dpkg-deb -x "$kernel_deb" "$work/kernel"
    dpkg-deb -x "$busybox_deb" "$work/busybox"
    bb=$work/busybox/bin/busybox
    [ -x "$bb" ] || die "no /bin/busybox in ${busybox_deb##*/}"
    kernel_image=$(find "$work/kernel/boot" -name 'vmlinuz-*' | head -n1)
    [ -n "$kernel_image" ] || die "no vmlinuz in ${kernel_deb##*/}"
    kver=${kernel_image##*/vmlinuz-}
    moddir=$work/kernel/lib/modules/$kver
}

# Module name as the kernel knows it: no directory, no .ko[.xz|.zst|.gz], "_" for "-".
module_name() {
    local n=${1##*/}
    n=${n%%.ko*}
    echo "${n//-/_}"
}

declare -A mod_path=() mod_builtin=() mod_done=()
mod_order=()

# add_module NAME: copies NAME's dependencies, then NAME, into the initramfs (decompressed:
# busybox insmod cannot read compressed modules) and appends it to mod_order.
add_module() {
    local name=$1 src ko deps dep
    [ -z "${mod_done[$name]:-}" ] || return 0
    mod_done[$name]=1
    [ -z "${mod_builtin[$name]:-}" ] || return 0
    src=${mod_path[$name]:-}
    [ -n "$src" ] || die "module $name is neither in $kver nor built in"
    ko=$root/lib/modules/$name.ko
    case "$src" in
    *.ko) cp "$src" "$ko" ;;
    *.ko.xz) "$bb" xz -dc "$src" >"$ko" ;;
    *.ko.gz) gzip -dc "$src" >"$ko" ;;
    *.ko.zst) have zstd || die "$src is zstd-compressed: install zstd"; zstd -qdc "$src" >"$ko" ;;
    *) die "unknown module format: $src" ;;
    esac
    # The .modinfo section is NUL-separated "key=value" strings; modules.dep is not in the .deb
    # (depmod makes it at install time), so the dependencies are read from there.
    deps=$(tr '\0' '\n' <"$ko" | sed -n 's/^depends=//p' | head -n1)
    for dep in ${deps//,/ }; do
        add_module "$dep"
    done
    mod_order+=("$name")
}

collect_modules() {
    local f
    while IFS= read -r -d '' f; do
        mod_path[$(module_name "$f")]=$f
    done < <(find "$moddir/kernel" -name '*.ko*' -print0)
    if [ -f "$moddir/modules.builtin" ]; then
        while IFS= read -r f; do
            mod_builtin[$(module_name "$f")]=1
        done <"$moddir/modules.builtin"
    fi
    mkdir -p "$root/lib/modules"
    for f in "${modules[@]}"; do
        add_module "$f"
    done
    printf '%s\n' "${mod_order[@]}" >"$root/lib/onestack/modules.order"
    step "kernel $kver, modules: ${mod_order[*]}"
}

build_initramfs() {
    local applet
    step "building initrd.img"
    root=$work/initramfs
    mkdir -p "$root"/{bin,dev,proc,sys,run,tmp,root,mnt/config,var/log,usr,lib/onestack,etc/acpi/PWRF}
    cp "$bb" "$root/bin/busybox"
    for applet in $("$bb" --list); do
        [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
    done
    ln -s bin "$root/sbin"
    ln -s ../bin "$root/usr/bin"
    ln -s ../bin "$root/usr/sbin"

    install -m 755 "$guest_dir/init" "$root/init"
    install -m 644 "$guest_dir/json.awk" "$root/lib/onestack/json.awk"
    install -m 755 "$guest_dir/udhcpc.script" "$root/lib/onestack/udhcpc.script"
    install -m 755 "$guest_dir/http-reply" "$root/lib/onestack/http-reply"
    install -m 755 "$guest_dir/acpi-power" "$root/etc/acpi/PWRF/00000080"
    # The kernel opens /dev/console before /init runs; without the node (mknod needs root)
    # /init reopens it from devtmpfs instead.
    mknod "$root/dev/console" c 5 1 2>/dev/null || true

    collect_modules

    # Owned by root whoever builds; sorted so that directories precede their contents.
    (cd "$root" && find . | LC_ALL=C sort | "$bb" cpio -o -H newc -R 0:0 2>/dev/null) |
        gzip -9n >"$work/out/initrd.img"
    cp "$kernel_image" "$work/out/vmlinuz"
}

# SYSLINUX and ISOLINUX read the same configuration: boot the kernel at once, no prompt.
write_boot_config() {
    cat >"$1" <<EOF
DEFAULT guest
PROMPT 0
TIMEOUT 0
LABEL guest
  KERNEL /vmlinuz
  INITRD /initrd.img
  APPEND $cmdline
EOF
}

# disk.img without loop devices: the FAT file system is made in a file of its own, SYSLINUX is
# installed into that file through mtools, and the file is copied into the partitioned image.
build_disk() {
    local fat=$work/fat.img disk=$work/out/disk.img
    local fat_sectors=$((disk_mib * 2048 - part_start))
    step "building disk.img (${disk_mib} MiB, MBR + FAT16 + SYSLINUX)"
    write_boot_config "$work/syslinux.cfg"
    # -h: "hidden sectors", the partition's offset, which the FAT boot sector needs to find
    # ldlinux.sys on the whole disk.
    mkfs.vfat -F 16 -n ONESTACK -h "$part_start" -C "$fat" $((fat_sectors / 2)) >/dev/null
    export MTOOLS_SKIP_CHECK=1 # mtools would object to the geometry of a plain file
    mcopy -i "$fat" "$work/out/vmlinuz" "$work/out/initrd.img" "$work/syslinux.cfg" ::/
    syslinux --install "$fat"

    truncate -s "${disk_mib}M" "$disk"
    # One bootable partition, type 0x0e (FAT16, LBA), over the rest of the disk.
    printf 'label: dos\nstart=%s, type=e, bootable\n' "$part_start" | sfdisk -q "$disk"
    dd if="$fat" of="$disk" bs=512 seek="$part_start" conv=notrunc,sparse status=none
    # SYSLINUX's MBR code (440 bytes: the partition table after it stays as sfdisk wrote it)
    # chain-loads the active partition's boot sector.
    dd if="$syslinux_mbr" of="$disk" bs=440 count=1 conv=notrunc status=none
}

build_iso() {
    local iso_root=$work/iso
    step "building install.iso (ISOLINUX, El Torito)"
    mkdir -p "$iso_root/isolinux"
    cp "$work/out/vmlinuz" "$work/out/initrd.img" "$iso_root/"
    cp "$isolinux_bin" "$syslinux_modules/ldlinux.c32" "$iso_root/isolinux/"
    write_boot_config "$iso_root/isolinux/isolinux.cfg"
    genisoimage -quiet -o "$work/out/install.iso" -V ONESTACK_GUEST -J -R \
        -b isolinux/isolinux.bin -c isolinux/boot.cat \
        -no-emul-boot -boot-load-size 4 -boot-info-table "$iso_root"
}

main() {
    if up_to_date; then
        step "test guest in $out is up to date"
        exit 0
    fi
    local started=$SECONDS o
    mkdir -p "$out"
    out=$(cd "$out" && pwd)
    ensure_host_tools
    fetch_debs

    work=$(mktemp -d "$out/.work.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    mkdir -p "$work/out"
    unpack_debs
    build_initramfs
    build_disk
    build_iso

    # Moved in only when all are built, so an interrupted build never looks up to date.
    for o in "${outputs[@]}"; do
        mv -f "$work/out/$o" "$out/$o"
    done
    step "done in $((SECONDS - started)) s:"
    for o in "${outputs[@]}"; do
        printf '    %s (%s)\n' "$out/$o" "$(du -h --apparent-size "$out/$o" | cut -f1)"
    done
}

main
