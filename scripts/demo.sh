#!/usr/bin/env bash
# make demo: a simulated well pad polled, alarming, buffering and uploading to a local TLS endpoint.
# Starts edgesim (the pad), the reference receiver (the tenant's sync endpoint) and edged, walks through
# what a field tech and an operator would look at, and cleans up after itself. A few minutes, no input.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(swift build --show-bin-path)
DEMO=/tmp/edged-demo
EDGECTL="$BIN/edgectl"
SOCK="--socket $DEMO/control.sock"
pids=()

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local limit=$1 what=$2; shift 2
  for _ in $(seq 1 $((limit * 4))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.25; done
  echo "demo: timed out waiting for $what" >&2; return 1
}
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

rm -rf "$DEMO" && mkdir -p "$DEMO"
step "Setting up: a test CA and token, a serial line (socat pty pair)"
bash tools/receiver/make_test_ca.sh "$DEMO/pki" demo-gw >/dev/null
cp "$DEMO/pki/ca.pem" "$DEMO/ca.pem"
( umask 077; head -c 24 /dev/urandom | base64 | tr '+/' '-_' > "$DEMO/token" )
echo "demo-gw:$(cat "$DEMO/token")" > "$DEMO/tokens.txt"
socat PTY,link=$DEMO/tty-gateway,raw,echo=0 PTY,link=$DEMO/tty-sim,raw,echo=0 & pids+=($!)
wait_for 10 "the pty pair" test -e "$DEMO/tty-sim"

step "The example pad's configuration, validated"
"$EDGECTL" config validate config/demo.yaml

step "Starting the reference receiver (https://127.0.0.1:18443), edgesim and edged"
python3 tools/receiver/receiver.py --listen 127.0.0.1:18443 --cert "$DEMO/pki/server.pem" --key "$DEMO/pki/server.key" \
  --tokens "$DEMO/tokens.txt" --store "$DEMO/receiver.db" --admin 127.0.0.1:18444 > "$DEMO/receiver.log" 2>&1 & pids+=($!)
"$BIN/edgesim" --config config/demo.yaml --serial wells-serial=$DEMO/tty-sim --profile config/demo-sim.yaml \
  --control "$DEMO/sim.sock" > "$DEMO/edgesim.log" 2>&1 & pids+=($!)
wait_for 15 "edgesim" test -S "$DEMO/sim.sock"
wait_for 15 "the receiver" curl -s http://127.0.0.1:18444/stats
"$BIN/edged" --config config/demo.yaml --control-socket "$DEMO/control.sock" > "$DEMO/edged.log" 2>&1 & pids+=($!)
wait_for 20 "edged" $EDGECTL status $SOCK || { cat "$DEMO/edged.log"; exit 1; }
sleep 3
step "edgectl status"
$EDGECTL status $SOCK
step "edgectl devices"
$EDGECTL devices $SOCK
step "Live values (edgectl tail --device rpc-1 --once)"
$EDGECTL tail --device rpc-1 --once $SOCK

step "rpc-1's tubing pressure climbs through H (450 psi) and HH (600 psi)…"
wait_for 60 "the HH alarm" bash -c "$EDGECTL alarms list $SOCK | grep -q 'rpc-1-tubing.hh'"
$EDGECTL alarms list $SOCK
step "The operator acknowledges them (by rule: both levels)"
$EDGECTL alarms ack rpc-1-tubing $SOCK
$EDGECTL alarms list $SOCK
step "…and the pressure falls back: both alarms clear"
wait_for 60 "the alarms to clear" bash -c "! $EDGECTL alarms list $SOCK | grep -q 'rpc-1-tubing'"
$EDGECTL alarms list $SOCK

step "Outage: the sync endpoint answers 503 for 20 s; the backlog grows in the buffer"
curl -s -X POST http://127.0.0.1:18444/faults -d '{"mode":"status","code":503,"retryAfter":5}' >/dev/null
for i in 1 2 3 4; do sleep 5; $EDGECTL status $SOCK | grep -E 'backlog|uplink'; done
step "Connectivity returns: the backlog drains"
curl -s -X POST http://127.0.0.1:18444/faults -d '{"mode":"none"}' >/dev/null
wait_for 90 "the backlog to drain" bash -c "$EDGECTL status --json $SOCK | python3 -c 'import json,sys; b=json.load(sys.stdin)[\"backlog\"]; sys.exit(0 if b[\"reading\"] < 200 and b[\"alarm\"] == 0 else 1)'"
$EDGECTL status $SOCK | grep -E 'backlog|uplink'
$EDGECTL uplink $SOCK

step "Gas measurement: efm-1's hourly and daily records and event log, backfilled and uploaded (edgectl efm)"
wait_for 60 "the EFM backfill" bash -c "$EDGECTL efm status --json $SOCK | python3 -c 'import json,sys; m=json.load(sys.stdin)[0]; sys.exit(0 if m[\"queued\"] == 0 and m[\"uploaded\"] > 0 else 1)'"
$EDGECTL efm $SOCK
$EDGECTL efm history efm-1 --limit 3 $SOCK
$EDGECTL efm export efm-1 --archive daily $SOCK | head -3 | cut -c1-160
curl -s http://127.0.0.1:18444/efm/counts | python3 -c 'import json,sys; c=json.load(sys.stdin); print("at the receiver:", c["records"], "EFM records,", c["conflicts"], "conflicts,", c["gaps"], "gaps")'

step "The gateway's own health, stored every 20 s as readings of device demo-gw (edgectl tail --device demo-gw)"
wait_for 60 "a health sample" bash -c "$EDGECTL tail --device demo-gw --once $SOCK | grep -q uplink_success_rate"
$EDGECTL tail --device demo-gw --once $SOCK
curl -s http://127.0.0.1:18444/stats | python3 -c '
import json, sys, urllib.request
s = json.load(sys.stdin)
tags = set()
for e in s["store"]["byEpoch"]:
    page = json.load(urllib.request.urlopen("http://127.0.0.1:18444/records?gateway=demo-gw&epoch=%s&limit=100000" % e["epoch"]))
    tags |= {r["tag"] for r in page["records"] if r.get("device") == "demo-gw"}
print("at the receiver: %d health series of demo-gw: %s" % (len(tags), ", ".join(sorted(tags))))'

step "What arrived at the receiver"
curl -s http://127.0.0.1:18444/stats | python3 -c '
import json, sys
s = json.load(sys.stdin)
print(json.dumps({k: s[k] for k in s if k in ("batches", "recordsStored", "duplicates", "byStatus", "store")}, indent=2))'
grep -c " 200 " "$DEMO/receiver.log" | xargs -I{} echo "{} batches answered 200 (see $DEMO/receiver.log)"
step "Done: edged, edgesim and the receiver are stopped; logs stay in $DEMO"
