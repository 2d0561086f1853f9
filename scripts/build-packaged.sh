#!/usr/bin/env bash
# Builds products as the .deb ships them and prints the directory that holds them (build output on stderr):
# the Swift standard library and Foundation linked statically, and relative relocations packed (DT_RELR,
# read by glibc >= 2.36) with the toolchain's lld, so the loader reads 17 KiB of relocations at start
# instead of 2.1 MiB. Symbols are not exported (--no-export-dynamic overrides the static stdlib's
# -export-dynamic): nothing looks edged's own symbols up at run time, and their 17,000 dynamic symbol entries
# and names were 1.5 MB of the binary (dead code is already dropped: SwiftPM links release builds with
# --gc-sections). Used by `make deb` and by `make bench` (edged's memory as installed).
# Usage: scripts/build-packaged.sh PRODUCT...
set -euo pipefail
cd "$(dirname "$0")/.."
flags=(-c release --scratch-path .build-packaged --static-swift-stdlib
       -Xswiftc -use-ld=lld -Xlinker -z -Xlinker pack-relative-relocs -Xlinker --no-export-dynamic)
for product in "$@"; do swift build "${flags[@]}" --product "$product" >&2; done
swift build "${flags[@]}" --show-bin-path
