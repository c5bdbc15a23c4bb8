# Relance — build, demo and test entry points. Each target installs what it needs (idempotent).
SWIFT ?= swift
PREFIX ?= /usr/local
DESTDIR ?=
UNITDIR ?= /lib/systemd/system

.PHONY: all deps test-deps build release demo test fuzz bench format install install-data chaos clean

all: build

deps:
	@scripts/install-deps.sh

# What only the tests need as well (Chromium for the HTML report, websocket-client to drive it).
test-deps:
	@scripts/install-deps.sh --test

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

# Builds quietly (the compiler's output goes to .build/demo-build.log), then runs the demo.
demo: deps
	@scripts/demo.sh

# One build of everything (tests included; its log in .build/test-build.log), then the tests
# without rebuilding: suites, failures and the summary at the end (scripts/run-tests.sh).
test: test-deps
	@scripts/build-tests.sh
	@scripts/run-tests.sh

# Hostile input against the real binary (docs/operations.md, "Fuzzing"): 10,000 hostile spool
# files next to 1,000 valid records, then 5,000 hostile webhook and API requests. A 500-file
# version runs in make test (IntegrationTests/FuzzTests).
fuzz: deps
	@$(SWIFT) build > .build/fuzz-build.log 2>&1 || { tail -n 40 .build/fuzz-build.log; exit 1; }
	python3 scripts/fuzz.py --hostile $${FUZZ_HOSTILE:-10000} --valid $${FUZZ_VALID:-1000} --requests $${FUZZ_REQUESTS:-5000} --bounces $${FUZZ_BOUNCES:-1000} --seed $${FUZZ_SEED:-1}

# Relance against the tools it replaces (Postfix, a Python smtplib sender, Python requests, curl
# --parallel) and the raw ceilings, on loopback, medians of 3 (docs/PERFORMANCE.md). About 15
# minutes on 2 cores; BENCH_GROUPS="email sms" (or flat, scale, webhooks, plan) for a part of it.
bench: release
	@scripts/bench/install.sh
	@python3 scripts/bench/bench.py

# The long chaos run: more kills, more reminders (the short one is part of `make test`).
chaos: deps
	$(SWIFT) build --build-tests
	RELANCE_CHAOS_KILLS=$${RELANCE_CHAOS_KILLS:-60} RELANCE_CHAOS_REMINDERS=$${RELANCE_CHAOS_REMINDERS:-5000} \
		$(SWIFT) test --skip-build --filter ChaosTests

# FHS install: binaries in $(PREFIX)/bin, templates in $(PREFIX)/share/relance, docs in
# $(PREFIX)/share/doc/relance, the unit, sysusers and tmpfiles in systemd's places, and the example
# configuration as /etc/relance/relance.yaml unless one is already there. On the running system
# (no DESTDIR) the relance user and the tmpfiles entries are applied at once, so the configuration
# is root:relance 0640 and the service user can read it from the first start.
install: release install-data
	install -m 0755 .build/release/relance .build/release/relance-gateway-sim $(DESTDIR)$(PREFIX)/bin/
	@if [ -z "$(DESTDIR)" ] && command -v systemd-sysusers >/dev/null && command -v systemd-tmpfiles >/dev/null; then \
		systemd-sysusers /usr/lib/sysusers.d/relance.conf && systemd-tmpfiles --create /usr/lib/tmpfiles.d/relance.conf; \
	fi

# Everything but the binaries (tested by IntegrationTests/InstallTests without a release build).
install-data:
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/relance $(DESTDIR)$(PREFIX)/share/doc/relance \
		$(DESTDIR)/etc/relance $(DESTDIR)$(UNITDIR) $(DESTDIR)/usr/lib/sysusers.d $(DESTDIR)/usr/lib/tmpfiles.d
	rm -rf $(DESTDIR)$(PREFIX)/share/relance/templates && cp -r templates $(DESTDIR)$(PREFIX)/share/relance/templates
	sed 's|/usr/local|$(PREFIX)|g' systemd/relance.service > $(DESTDIR)$(UNITDIR)/relance.service && chmod 0644 $(DESTDIR)$(UNITDIR)/relance.service
	sed 's|/usr/local|$(PREFIX)|g' systemd/relance@.service > $(DESTDIR)$(UNITDIR)/relance@.service && chmod 0644 $(DESTDIR)$(UNITDIR)/relance@.service
	install -m 0644 systemd/relance.sysusers $(DESTDIR)/usr/lib/sysusers.d/relance.conf
	install -m 0644 systemd/relance.tmpfiles $(DESTDIR)/usr/lib/tmpfiles.d/relance.conf
	install -m 0644 README.md docs/*.md config/relance.example.yaml $(DESTDIR)$(PREFIX)/share/doc/relance/
	[ -e $(DESTDIR)/etc/relance/relance.yaml ] || \
		sed 's|/usr/share/relance/templates|$(PREFIX)/share/relance/templates|' config/relance.example.yaml > $(DESTDIR)/etc/relance/relance.yaml
	chmod 0640 $(DESTDIR)/etc/relance/relance.yaml

format:
	$(SWIFT) format --in-place --recursive Sources Tests Package.swift

clean:
	rm -rf .build demo-data relance-data
