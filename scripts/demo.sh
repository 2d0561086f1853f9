#!/usr/bin/env bash
# The demo: what edged makes of a realistic well pad. Grows with the daemon (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(swift build --show-bin-path)
EDGECTL="$BIN/edgectl"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Validate the example pad (4 rod pump controllers, a flow computer, MVT, ESP gauge, tank gauges)"
"$EDGECTL" config validate config/edged.example.yaml

step "The read plan: fewest requests per poll cycle, and the bus time they cost"
"$EDGECTL" plan --config config/edged.example.yaml

step "A broken config: every error, with file, line, column and field"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
sed -e 's/baud: 9600/baudrate: 9600/; s/unit: 20$/unit: 250/; s/hh: {setpoint: 600/hh: {setpoint: 400/' \
    config/edged.example.yaml > "$tmp/edged.yaml"
cp -r config/templates "$tmp/"
"$EDGECTL" config validate "$tmp/edged.yaml" || echo "(exit $?: edged would refuse this file and keep its old config)"
