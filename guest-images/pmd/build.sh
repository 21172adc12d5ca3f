#!/bin/sh
# Builds the PMD test guest: guest-images/out/pmd.elf (static ELF64, see README.md),
# guest-images/out/pmd-qemu-rom.bin (the 64 KiB stand-in BIOS that enters it
# under QEMU TCG on hosts without /dev/kvm, qemu/rom.S) and
# guest-images/out/pmd-hosted (the same driver as a Linux process whose port
# and MMIO accesses go to the VMM over pipes, hosted/hosted.c).
# Idempotent: rebuilds only when a source, this script or the compiler changes
# (a content hash of all of them is kept next to the output).
#   sh guest-images/pmd/build.sh            build if stale, print the path
#   sh guest-images/pmd/build.sh --force    always rebuild
set -eu

here=$(cd "$(dirname "$0")" && pwd)
out_dir=${XDPVM_GUEST_OUT:-$(cd "$here/.." && pwd)/out}
out="$out_dir/pmd.elf"
rom="$out_dir/pmd-qemu-rom.bin"
hosted="$out_dir/pmd-hosted"
stamp="$out_dir/pmd.elf.sha256"
CC=${CC:-gcc}

# Freestanding, no libc, fixed address; SSE is allowed (the VMM sets CR4.OSFXSR).
# -fno-tree-loop-distribute-patterns: gcc must not turn memset/memcpy's own loops into calls to themselves.
CFLAGS="-std=gnu11 -ffreestanding -nostdlib -static -fno-pic -fno-pie -no-pie -mno-red-zone -O2 \
 -Wall -Wextra -Werror -fno-stack-protector -fno-asynchronous-unwind-tables -fno-unwind-tables \
 -fcf-protection=none -fno-tree-loop-distribute-patterns -fno-builtin-printf \
 -I$here/include -I$here/src"
LDFLAGS="-Wl,-T,$here/link.ld -Wl,--build-id=none -Wl,-z,max-page-size=4096 -Wl,-z,noexecstack -Wl,--no-warn-rwx-segments"
SRCS="src/entry.S src/main.c src/console.c src/lib.c src/pci.c src/virtio_net.c src/virtqueue.c"

hash=$(
  cd "$here"
  {
    cat build.sh link.ld include/*.h src/*.h $SRCS qemu/rom.S qemu/rom.ld hosted/hosted.c hosted/start.S
    echo "$CC $CFLAGS $LDFLAGS"
    "$CC" --version 2>/dev/null | head -n 1
  } | sha256sum | cut -d' ' -f1
)

if [ "${1:-}" != "--force" ] && [ -f "$out" ] && [ -f "$rom" ] && [ -f "$hosted" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$hash" ]; then
  echo "$out"
  exit 0
fi

mkdir -p "$out_dir"
tmp="$out.tmp.$$"
trap 'rm -f "$tmp" "$tmp.o" "$tmp.rom" "$tmp.hosted"' EXIT
(cd "$here" && $CC $CFLAGS $LDFLAGS -o "$tmp" $SRCS)
(cd "$here" && $CC -c -o "$tmp.o" qemu/rom.S && ${LD:-ld} -T qemu/rom.ld -o "$tmp.rom" "$tmp.o" && ${OBJCOPY:-objcopy} -O binary "$tmp.rom" "$tmp.o")
[ "$(wc -c < "$tmp.o")" -eq 65536 ] || { echo "build.sh: qemu/rom.S must assemble to exactly 64 KiB" >&2; exit 1; }
mv -f "$tmp.o" "$rom"
HOSTED_SRCS=$(echo "$SRCS" | sed 's|src/entry.S||')
(cd "$here" && $CC $CFLAGS -DPMD_HOSTED -Wl,--build-id=none -Wl,-z,noexecstack -o "$tmp.hosted" hosted/start.S hosted/hosted.c $HOSTED_SRCS)
mv -f "$tmp.hosted" "$hosted"
mv -f "$tmp" "$out"
echo "$hash" > "$stamp"
echo "$out"
