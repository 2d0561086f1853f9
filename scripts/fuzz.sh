#!/usr/bin/env bash
# make fuzz: builds edgefuzz with libFuzzer (-sanitize=fuzzer, every module instrumented, in .build-fuzz) and
# runs each target for FUZZ_SECONDS (default 60) from its seed corpus (Tests/Fixtures/fuzz/<target>, and for
# config the fixture configurations, for control the golden replies). Findings go to .build-fuzz/crashes/;
# replay one with `.build/debug/edgefuzz TARGET FILE` and add it to the target's seeds with the fix.
# Usage: scripts/fuzz.sh [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-60}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(config enron rtu condition units retry-after control)
swift build --scratch-path .build-fuzz --product edgefuzz -Xswiftc -sanitize=fuzzer -Xswiftc -use-ld=lld \
  -Xlinker -u -Xlinker LLVMFuzzerRunDriver -Xlinker --export-dynamic-symbol=LLVMFuzzerRunDriver >&2
bin=$(swift build --scratch-path .build-fuzz --show-bin-path)/edgefuzz
mkdir -p .build-fuzz/crashes
status=0
for t in "${targets[@]}"; do
  corpus=.build-fuzz/corpus/$t
  mkdir -p "$corpus"
  case $t in
    config) for f in Tests/Fixtures/configs/*/edged.yaml config/*.yaml; do cp "$f" "$corpus/$(echo "$f" | tr / _)"; done ;;
    control) cp Tests/Fixtures/control/*.json "$corpus/" ;;
    *) cp Tests/Fixtures/fuzz/"$t"/* "$corpus/" ;;
  esac
  echo "== $t: ${seconds}s"
  # Swift's backtracer would catch the trap before libFuzzer could save the input.
  if ! SWIFT_BACKTRACE=enable=no "$bin" "$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix=".build-fuzz/crashes/$t-" "$corpus" 2>&1 | \
      grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::new_units_added|==[0-9]+==|artifact|SUMMARY)"; then
    :
  fi
  if ls .build-fuzz/crashes/"$t"-* >/dev/null 2>&1; then echo "!! $t: findings in .build-fuzz/crashes/"; status=1; fi
done
exit $status
