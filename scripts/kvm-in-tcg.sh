#!/usr/bin/env bash
# Runs a shell command where /dev/kvm exists even though this host has none:
# inside a Debian kernel under QEMU's software CPU (TCG, -cpu max), whose
# emulated SVM lets kvm_amd load and provide a real /dev/kvm. The host's /
# is the guest's / (9p, read-only); /tmp and /run are fresh tmpfs (network
# namespaces work there). Functionally real KVM, but every guest instruction
# is emulated: never a place to measure speed.
#   scripts/kvm-in-tcg.sh 'cd /work/main && node dist/test/kvm-ioeventfd.test.js'
# Needs the Debian packages qemu-system-x86 linux-image-amd64 busybox-static cpio
# (scripts/ensure.mjs installs them). Exit status: the command's.
set -euo pipefail
KVER=$(ls /lib/modules | sort -V | tail -n1)
KERNEL=/boot/vmlinuz-$KVER
WORK=${XDPVM_TCG_DIR:-/var/tmp/xdpvm-kvm-in-tcg}
INITRD=$WORK/initrd-$KVER-$(sha256sum "$0" | cut -c1-12).gz
if [ ! -f "$INITRD" ]; then
  # Built in a private directory, then renamed: concurrent callers never see half an initrd.
  STAGE=$(mktemp -d "$WORK.XXXXXX")
  trap 'rm -rf "$STAGE"' EXIT
  mkdir -p "$WORK" "$STAGE"/root/{bin,mods,mnt,proc,sys,dev}
  cp /bin/busybox "$STAGE/root/bin/"
  MODS=/lib/modules/$KVER/kernel
  # virtio transport and 9p, in load order.
  LIST="fs/netfs/netfs fs/fscache/fscache net/9p/9pnet drivers/virtio/virtio_ring drivers/virtio/virtio
        drivers/virtio/virtio_pci_legacy_dev drivers/virtio/virtio_pci_modern_dev drivers/virtio/virtio_pci
        net/9p/9pnet_virtio fs/9p/9p"
  for m in $LIST; do [ -f "$MODS/$m.ko" ] && cp "$MODS/$m.ko" "$STAGE/root/mods/"; done
  cat > "$STAGE/root/init" <<'INIT'
#!/bin/busybox sh
B=/bin/busybox
$B mount -t proc proc /proc; $B mount -t devtmpfs dev /dev
for m in netfs fscache 9pnet virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci 9pnet_virtio 9p; do
  [ -f /mods/$m.ko ] && $B insmod /mods/$m.ko
done
$B mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144 hostroot /mnt
$B mkdir -p /host && $B mount -o bind /mnt /host
$B mount -t proc proc /mnt/proc; $B mount -t sysfs sys /mnt/sys
$B mount -t devtmpfs dev /mnt/dev; $B mount -t tmpfs tmp /mnt/tmp; $B mount -t tmpfs run /mnt/run
# The caller's directory (the checkout) stays visible even when it lives under /tmp.
BIND=$($B cat /proc/cmdline | $B sed -n 's/.*xbind=\([^ ]*\).*/\1/p' | $B base64 -d)
if [ -n "$BIND" ] && [ -d "/host$BIND" ]; then $B mkdir -p "/mnt$BIND" 2>/dev/null; $B mount -o bind "/host$BIND" "/mnt$BIND"; fi
$B mount -t bpf bpf /mnt/sys/fs/bpf 2>/dev/null
CMD=$($B cat /proc/cmdline | $B sed -n 's/.*xcmd=\([^ ]*\).*/\1/p' | $B base64 -d)
# KVM flips kernel static keys (preempt notifiers, LAPIC state) as the
# first VM/vCPU comes and the last goes, and the kernel patches its text
# with int3 to do so; under multi-threaded TCG that patching now and then
# leaves a CPU looping on a stale int3 (both CPUs in soft lockup at
# finish_task_switch). One VM with a vCPU held open for the whole session
# keeps those keys from ever dropping back to zero.
$B cat > /mnt/run/kvm-keepalive.py <<'PY'
import fcntl, os, time
kvm = os.open('/dev/kvm', os.O_RDWR)
vm = fcntl.ioctl(kvm, 0xAE01, 0)   # KVM_CREATE_VM
fcntl.ioctl(vm, 0xAE60, 0)         # KVM_CREATE_IRQCHIP
fcntl.ioctl(vm, 0xAE41, 0)         # KVM_CREATE_VCPU 0
print('kvm-in-tcg: keep-alive VM open', flush=True)
time.sleep(1e9)
PY
$B chroot /mnt /bin/sh -c "modprobe kvm_amd 2>/dev/null || modprobe kvm_intel; [ -e /dev/kvm ] || echo 'kvm-in-tcg: no /dev/kvm in the TCG guest (modprobe kvm_amd/kvm_intel failed): the KVM tests will fail'; modprobe veth; ip link set lo up; python3 /run/kvm-keepalive.py & sleep 1; $CMD"
echo "==== kvm-in-tcg: command exited $?"
$B poweroff -f
INIT
  chmod +x "$STAGE/root/init"
  (cd "$STAGE/root" && find . | cpio -o -H newc 2>/dev/null | gzip -1 > "$STAGE/initrd.gz") && mv "$STAGE/initrd.gz" "$INITRD"
fi
CMD64=$(printf '%s' "$1" | base64 -w0)
BIND64=$(printf '%s' "$PWD" | base64 -w0)
OUT=$(mktemp)
PIDFILE=$(mktemp)
trap 'rm -f "$OUT" "$PIDFILE"; [ -n "${STAGE:-}" ] && rm -rf "$STAGE"' EXIT
timeout "${XDPVM_TCG_TIMEOUT:-1800}" qemu-system-x86_64 -accel tcg -cpu max -smp "${XDPVM_TCG_CPUS:-2}" -m 4096 \
  -nographic -no-reboot -kernel "$KERNEL" -initrd "$INITRD" -append "console=ttyS0 quiet panic=-1 softlockup_panic=1 xcmd=$CMD64 xbind=$BIND64" \
  -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap -nic none -pidfile "$PIDFILE" | tee "$OUT" &
# The guest's kernel can also hang without its watchdog firing (both CPUs
# spinning with interrupts off: seen once in ~40 boots, before any output).
# Callers bound each command they run and print when it ends, so a console
# silent for longer than XDPVM_TCG_SILENCE seconds means the kernel is stuck:
# say so in the output (callers treat it like a kernel panic) and stop QEMU.
SILENCE=${XDPVM_TCG_SILENCE:-720}
while kill -0 $! 2>/dev/null; do
  sleep 5
  if [ $(( $(date +%s) - $(stat -c %Y "$OUT") )) -ge "$SILENCE" ]; then
    echo "==== kvm-in-tcg: no console output for ${SILENCE} s: the TCG guest's kernel is stuck; stopping QEMU" | tee -a "$OUT"
    kill "$(cat "$PIDFILE")" 2>/dev/null || true
    break
  fi
done
wait
code=$(sed -n 's/^==== kvm-in-tcg: command exited \([0-9]*\).*/\1/p' "$OUT" | tail -n1)
exit "${code:-125}"
