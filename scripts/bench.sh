#!/usr/bin/env bash
# make bench: release build, then every benchmark beside its reference measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
# Every product: the daemon benchmark runs edged, edgectl and edgesim from the same build.
swift build -c release
BIN=$(swift build -c release --show-bin-path)
# edged as the .deb ships it, for its memory figures.
PACKAGED=$(scripts/build-packaged.sh edged)
echo "# edgebench $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
"$BIN/edgebench" all --packaged "$PACKAGED" "$@"
