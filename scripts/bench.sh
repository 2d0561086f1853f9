#!/usr/bin/env bash
# make bench: release build, then every benchmark beside its reference measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product edgebench
BIN=$(swift build -c release --show-bin-path)
echo "# edgebench $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
"$BIN/edgebench" all "$@"
