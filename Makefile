# edged — build, test, demo and benchmark entry points. `make test` and `make demo` install what they need.
SWIFT      ?= swift
SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# System libraries linked by the package, and the tools the tests drive (socat makes serial pty pairs,
# openssl makes the test CA).
APT_PKGS   := pkg-config libmodbus-dev libsqlite3-dev libssl-dev libsystemd-dev libcurl4-openssl-dev zlib1g-dev \
              socat openssl python3 python3-pytest python3-jsonschema sqlite3 e2fsprogs util-linux mount
BUILD_FLAGS ?=

.PHONY: deps build release test format tsan soak demo bench deb fuzz clean

deps:
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

build: deps
	$(SWIFT) build $(BUILD_FLAGS)

release: deps
	$(SWIFT) build -c release $(BUILD_FLAGS)

# Unit tests, golden configs, and integration tests against real peers on loopback; the format first
# (.swift-format, line length 120: `make format` applies it).
test: deps
	$(SWIFT) format lint --strict --recursive Sources Tests Package.swift
	python3 -m pytest -q -p no:cacheprovider tools/receiver
	$(SWIFT) build --build-tests $(BUILD_FLAGS)
	$(SWIFT) test --skip-build $(BUILD_FLAGS)

format:
	$(SWIFT) format format --in-place --recursive Sources Tests Package.swift

# The unit and integration suites under ThreadSanitizer (its own build folder; slow: minutes to build).
tsan: deps
	$(SWIFT) build --build-tests --sanitize=thread --scratch-path .build-tsan $(BUILD_FLAGS)
	@# edged, edgesim and edgectl run as child processes: their reports land beside the test process's.
	rm -rf .build-tsan/reports && mkdir -p .build-tsan/reports
	EDGED_TSAN=1 EDGECTL_TIMEOUT=50 TSAN_OPTIONS="second_deadlock_stack=1 log_path=$(CURDIR)/.build-tsan/reports/race" \
	  $(SWIFT) test --skip-build --sanitize=thread --scratch-path .build-tsan $(BUILD_FLAGS); rc=$$?; \
	if ls .build-tsan/reports/race.* >/dev/null 2>&1; then cat .build-tsan/reports/race.*; echo "ThreadSanitizer reports above"; exit 1; fi; \
	exit $$rc

# Long fault loops and soaks (not part of `make test`), then edged polling the example pad x10 for ten
# minutes: its own memory must stay flat.
soak: deps
	EDGED_SOAK=1 $(SWIFT) test $(BUILD_FLAGS)
	$(SWIFT) build -c release $(BUILD_FLAGS)
	$$($(SWIFT) build -c release --show-bin-path)/edgebench daemon --seconds 600 --backlog 1000000 --trace 60 \
	  --packaged $$(./scripts/build-packaged.sh edged)

# libFuzzer on every parser of untrusted bytes (config, Enron and RTU frames, conditions, units, Retry-After,
# control replies), FUZZ_SECONDS (60) each; findings in .build-fuzz/crashes. make test replays the seeds.
fuzz: deps
	./scripts/fuzz.sh

demo: deps build
	./scripts/demo.sh

bench: deps
	./scripts/bench.sh

deb: deps
	./scripts/deb.sh

clean:
	rm -rf .build .build-deb .build-fuzz demo-run
