# Relance — build, demo and test entry points. Each target installs what it needs (idempotent).
SWIFT ?= swift

.PHONY: all deps build release demo test bench format clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

demo: build
	@scripts/demo.sh

# One build of everything (tests included), then the tests without rebuilding.
test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

bench: release
	@scripts/bench.sh

format:
	$(SWIFT) format --in-place --recursive Sources Tests Package.swift

clean:
	rm -rf .build demo-data relance-data
