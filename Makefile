# Relance — build, demo and test entry points. Each target installs what it needs (idempotent).
SWIFT ?= swift
PREFIX ?= /usr/local
DESTDIR ?=
UNITDIR ?= /lib/systemd/system

.PHONY: all deps build release demo test bench format install chaos clean

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

# The long chaos run: more kills, more reminders (the short one is part of `make test`).
chaos: deps
	$(SWIFT) build --build-tests
	RELANCE_CHAOS_KILLS=$${RELANCE_CHAOS_KILLS:-60} RELANCE_CHAOS_REMINDERS=$${RELANCE_CHAOS_REMINDERS:-5000} \
		$(SWIFT) test --skip-build --filter ChaosTests

# FHS install: binaries in $(PREFIX)/bin, templates in $(PREFIX)/share/relance, docs in
# $(PREFIX)/share/doc/relance, the unit, sysusers and tmpfiles in systemd's places, and the example
# configuration as /etc/relance/relance.yaml unless one is already there.
install: release
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/relance $(DESTDIR)$(PREFIX)/share/doc/relance \
		$(DESTDIR)/etc/relance $(DESTDIR)$(UNITDIR) $(DESTDIR)/usr/lib/sysusers.d $(DESTDIR)/usr/lib/tmpfiles.d
	install -m 0755 .build/release/relance .build/release/relance-gateway-sim $(DESTDIR)$(PREFIX)/bin/
	rm -rf $(DESTDIR)$(PREFIX)/share/relance/templates && cp -r templates $(DESTDIR)$(PREFIX)/share/relance/templates
	sed 's|/usr/local|$(PREFIX)|g' systemd/relance.service > $(DESTDIR)$(UNITDIR)/relance.service && chmod 0644 $(DESTDIR)$(UNITDIR)/relance.service
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
