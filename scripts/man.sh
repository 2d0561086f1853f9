#!/usr/bin/env bash
# Regenerates packaging/man/edged.8 and edgectl.1 from the binaries' own help (swift-argument-parser's
# generate-manual tool; its first build takes a few minutes). make test checks that the committed pages
# still name every subcommand and option (ManPageTests); run this after changing a command.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --product edged --product edgectl >/dev/null
tool=$(find .build -path '*debug/generate-manual-tool' -type f | head -1)
if [ -z "$tool" ]; then
  swift package generate-manual --configuration debug --help >/dev/null
  tool=$(find .build -path '*debug/generate-manual-tool' -type f | head -1)
fi
date=$(git log -1 --format=%cs 2>/dev/null || date +%F)
"$tool" .build/debug/edged --section 8 --date "$date" --authors "WellPulse Edge Team<edge@wellpulse.io>" -o packaging/man
"$tool" .build/debug/edgectl --section 1 --date "$date" --authors "WellPulse Edge Team<edge@wellpulse.io>" -o packaging/man
ls -l packaging/man
