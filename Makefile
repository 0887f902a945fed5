# kernelsplit: every target installs what it needs first (Debian 12 or Fedora).

PYTHON  := /usr/bin/python3
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
VERSION := $(shell sed -n 's/^Version: *//p' kernelsplit.spec)
BUILD   := $(CURDIR)/build

# mmdebstrap + the keyring build the Debian sid chroot the dnf5 tests run in (tests/sidchroot.py).
DEBIAN_PACKAGES := dnf python3-dnf rpm createrepo-c umockdev python3-pyudev kmod libkmod2 \
	libkmod-dev python3-pytest python3-systemd gcc libc6-dev binutils xz-utils zstd \
	util-linux make apt python3-createrepo-c groff-base man-db cpio \
	mmdebstrap debian-archive-keyring \
	ansible-core prometheus-node-exporter python3-prometheus-client prometheus openssh-client \
	systemd python3-yaml python3-hypothesis
FEDORA_PACKAGES := python3-dnf rpm-build createrepo_c umockdev python3-pyudev kmod kmod-libs \
	kmod-devel python3-pytest python3-systemd gcc binutils xz zstd util-linux make \
	python3-createrepo_c python3-dnf-plugins-core groff-base man-db cpio \
	ansible-core golang-github-prometheus-node-exporter python3-prometheus_client \
	golang-github-prometheus openssh-clients systemd python3-pyyaml python3-hypothesis

.PHONY: deps test demo bench rpm clean

deps:
	@if command -v apt-get >/dev/null 2>&1; then \
	    missing=$$(for p in $(DEBIAN_PACKAGES); do \
	        dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	    if [ -n "$$missing" ]; then \
	        echo "installing: $$missing"; \
	        $(SUDO) apt-get update -q && \
	        DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
	    fi; \
	elif command -v dnf >/dev/null 2>&1; then \
	    missing=$$(for p in $(FEDORA_PACKAGES); do rpm -q $$p >/dev/null 2>&1 || echo $$p; done); \
	    if [ -n "$$missing" ]; then $(SUDO) dnf install -y $$missing; fi; \
	else \
	    echo "neither apt-get nor dnf: install $(DEBIAN_PACKAGES) by hand" >&2; exit 1; \
	fi

test: deps
	$(PYTHON) -m pytest -q tests

demo: deps
	$(PYTHON) demo/demo.py

bench: deps
	mkdir -p $(BUILD)
	# Every bench runs; a missed target makes the whole exit non-zero at the end.
	status=0; \
	for bench in resolve modalias_length agreement upgrade inspect_mode fleet dnf5; do \
	    $(PYTHON) bench/$$bench.py --json $(BUILD)/bench-$$bench.json || status=1; \
	done; \
	exit $$status

rpm: deps
	rm -rf $(BUILD)/rpmbuild && mkdir -p $(BUILD)/rpmbuild/SOURCES
	tar -czf $(BUILD)/rpmbuild/SOURCES/dnf-plugin-kernelsplit-$(VERSION).tar.gz --exclude=__pycache__ \
	    --transform 's,^,dnf-plugin-kernelsplit-$(VERSION)/,' \
	    README.md kernelsplit.spec dnf-plugin-kernelsplit/kernelsplit.py \
	    dnf-plugin-kernelsplit/kernelsplit dnf-plugin-kernelsplit/kernelsplit-dnf5-guard \
	    dnf-plugin-kernelsplit/50-kernelsplit.install \
	    dnf-plugin-kernelsplit/dnf_kernelsplit/*.py etc/dnf/plugins/kernelsplit.conf \
	    etc/dnf/libdnf5-plugins/actions.d/kernelsplit.actions \
	    rpm/modalias.attr rpm/modalias.prov man/dnf-kernelsplit.8 man/kernelsplit.conf.5 \
	    man/kernelsplit.1 metrics ansible
	rpmbuild -bb --define '_topdir $(BUILD)/rpmbuild' kernelsplit.spec
	@ls $(BUILD)/rpmbuild/RPMS/noarch/*.rpm

clean:
	rm -rf $(BUILD)
