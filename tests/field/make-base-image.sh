#!/usr/bin/env bash
# Build a base SD image shaped like Raspberry Pi OS Lite (64-bit), from Debian's own packages:
# Debian bookworm arm64 (what Raspberry Pi OS Lite 64-bit is built on) made with mmdebstrap
# (arm64 binaries run through qemu-user-static and binfmt_misc), laid out like Raspberry Pi OS:
# an MBR, a FAT boot partition (mounted at /boot/firmware, with config.txt and cmdline.txt) and
# an ext4 root holding Debian's arm64 kernel and initrd in /boot. No first user ("pi" or any):
# the first boot must not depend on one. Nothing is mounted except binfmt_misc when missing.
#
#   tests/field/make-base-image.sh OUT.img      (root; about 5-15 minutes, cached by the caller)
#
# Differences from a real Raspberry Pi OS Lite image: no Raspberry Pi firmware, kernel or
# device trees (the emulated machine boots Debian's kernel directly), no raspi-config/cloud-init.
set -euo pipefail

out=${1:?usage: $0 OUT.img}
suite=bookworm
boot_mib=256          # Raspberry Pi OS Lite: 512 MiB; smaller here, same role
root_mib=2560         # room for the wheelhouse and the venv first boot installs
first_sector=8192     # 4 MiB, as Raspberry Pi OS

for tool in mmdebstrap:mmdebstrap mkfs.vfat:dosfstools mcopy:mtools mkfs.ext4:e2fsprogs \
            sfdisk:fdisk qemu-aarch64-static:qemu-user-static update-binfmts:binfmt-support; do
    command -v "${tool%%:*}" >/dev/null || { echo "make-base-image: ${tool%%:*} missing (apt install ${tool##*:})" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "make-base-image: run as root (mmdebstrap root mode)" >&2; exit 2; }

# arm64 binaries in the chroot run through binfmt_misc: mount it and register qemu-aarch64.
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || update-binfmts --import qemu-aarch64
fi
grep -q enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 \
    || { echo "make-base-image: binfmt_misc has no enabled qemu-aarch64 entry" >&2; exit 2; }

out=$(realpath -m "$out")
work=$(mktemp -d "$(dirname "$out")/.base-XXXXXX")
cleanup() {  # never delete through a mount mmdebstrap may have left (/proc, /dev of the chroot)
    if grep -q " $work/" /proc/mounts; then
        echo "make-base-image: $work still has mounts; not deleting it" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
rootdir=$work/root
diskid=7a9f1e42  # fixed: PARTUUIDs 7a9f1e42-01 (boot) and -02 (root), as fstab and cmdline.txt say

echo "make-base-image: debootstrapping Debian $suite arm64 (mmdebstrap)"
# minbase + what Raspberry Pi OS Lite has and first boot needs: systemd as init, udev, a kernel
# and initrd, python3 with venv (no pip: first boot runs pip from the wheelhouse's own wheel).
# The initrd carries only the modules the boot disk needs (MODULES=list: virtio, ext4): Debian's
# default (most) takes many minutes to build under qemu-user, and the terminal needs no others
# before its root is mounted. The machine id is left empty (made on first boot, as on Raspberry Pi OS) and systemd's own
# interactive first-boot prompts are masked: nobody answers them on a terminal.
mmdebstrap --mode=root --arch=arm64 --variant=minbase \
    --include=systemd-sysv,udev,kmod,linux-image-arm64,initramfs-tools,zstd,python3,python3-venv,e2fsprogs,dosfstools,procps \
    --aptopt='Acquire::Retries "5"' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --essential-hook='mkdir -p "$1/etc/initramfs-tools/conf.d"; echo MODULES=list > "$1/etc/initramfs-tools/conf.d/modules"; mkdir -p "$1/usr/share/initramfs-tools/modules.d"; printf "virtio_pci\nvirtio_mmio\nvirtio_blk\next4\n" > "$1/usr/share/initramfs-tools/modules.d/pitap-field"' \
    --customize-hook='echo raspberrypi > "$1/etc/hostname"' \
    --customize-hook='printf "127.0.0.1\tlocalhost\n127.0.1.1\traspberrypi\n" > "$1/etc/hosts"' \
    --customize-hook='mkdir -p "$1/boot/firmware"' \
    --customize-hook="printf 'proc /proc proc defaults 0 0\nPARTUUID=$diskid-01 /boot/firmware vfat defaults 0 2\nPARTUUID=$diskid-02 / ext4 defaults,noatime 0 1\n' > \"\$1/etc/fstab\"" \
    --customize-hook='rm -f "$1/etc/machine-id" "$1/var/lib/dbus/machine-id"; : > "$1/etc/machine-id"' \
    --customize-hook='ln -sf /dev/null "$1/etc/systemd/system/systemd-firstboot.service"' \
    --customize-hook='rm -rf "$1/var/cache/apt/archives/"*.deb "$1/var/lib/apt/lists/"*' \
    "$suite" "$rootdir"

ls "$rootdir"/boot/vmlinuz-* "$rootdir"/boot/initrd.img-* >/dev/null \
    || { echo "make-base-image: no kernel/initrd in the root's /boot" >&2; exit 1; }

echo "make-base-image: boot partition (FAT, config.txt, cmdline.txt)"
cat > "$work/config.txt" <<'EOF'
# For more options and information see
# http://rptl.io/configtxt
# Some settings may impact device functionality. See link above for details

# Uncomment some or all of these to enable the optional hardware interfaces
#dtparam=i2c_arm=on
#dtparam=i2s=on
#dtparam=spi=on

# Enable audio (loads snd_bcm2835)
dtparam=audio=on

# Automatically load overlays for detected cameras
camera_auto_detect=1

# Automatically load overlays for detected DSI displays
display_auto_detect=1

# Automatically load initramfs files, if found
auto_initramfs=1

# Enable DRM VC4 V3D driver
dtoverlay=vc4-kms-v3d
max_framebuffers=2

# Don't have the firmware create an initial video= setting in cmdline.txt.
# Use the kernel's default instead.
disable_fw_kms_setup=1

# Run in 64-bit mode
arm_64bit=1

# Disable compensation for displays with overscan
disable_overscan=1

# Run as fast as firmware / board allows
arm_boost=1

[cm4]
# Enable host mode on the 2711 built-in XHCI USB controller.
# This line should be removed if the legacy DWC2 controller is required
# (e.g. for USB device mode) or if USB support is not required.
otg_mode=1

[all]
EOF
echo "console=serial0,115200 console=tty1 root=PARTUUID=$diskid-02 rootfstype=ext4 fsck.repair=yes rootwait" \
    > "$work/cmdline.txt"
truncate -s "${boot_mib}M" "$work/boot.vfat"
mkfs.vfat -F 32 -n bootfs "$work/boot.vfat" >/dev/null
mcopy -i "$work/boot.vfat" "$work/config.txt" "$work/cmdline.txt" ::/

echo "make-base-image: root partition (ext4 from the tree, no mount)"
truncate -s "${root_mib}M" "$work/root.ext4"
mkfs.ext4 -q -L rootfs -d "$rootdir" "$work/root.ext4"

echo "make-base-image: MBR (disk id $diskid) and partitions"
boot_sectors=$(( boot_mib * 2048 ))
root_start=$(( first_sector + boot_sectors ))
root_sectors=$(( root_mib * 2048 ))
total=$(( (root_start + root_sectors) * 512 ))
rm -f "$work/disk.img"
truncate -s "$total" "$work/disk.img"
sfdisk --quiet "$work/disk.img" <<EOF
label: dos
label-id: 0x$diskid
unit: sectors

start=$first_sector, size=$boot_sectors, type=c
start=$root_start, size=$root_sectors, type=83
EOF
dd if="$work/boot.vfat" of="$work/disk.img" bs=1M seek=$(( first_sector / 2048 )) conv=notrunc,sparse status=none
dd if="$work/root.ext4" of="$work/disk.img" bs=1M seek=$(( root_start / 2048 )) conv=notrunc,sparse status=none
mv "$work/disk.img" "$out"
echo "make-base-image: $out ready ($(( total / 1048576 )) MiB, Debian $suite arm64)"
