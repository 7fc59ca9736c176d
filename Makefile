# The two commands of the README: `make demo` and `make test`. Both set up what they need.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
LAN    ?= local

.PHONY: setup system demo test unit lint bench bundles clean help

help:
	@echo "make demo   - set up .venv and run the main experiment on this machine (--lan=$(LAN))"
	@echo "make test   - set up .venv and system services, then run the whole test suite"
	@echo "make unit   - the fast part of the suite: no docker, sshd, registry or etcd (no root needed)"
	@echo "make lint   - ruff and mypy, as CI runs them"
	@echo "make bench  - run the benchmarks (ratios measured side by side)"
	@echo "make bundles - re-make bundles/ from the current test cases (after changing one)"

# torch and torchvision first, unpinned: pip takes the newest matching pair.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q torch torchvision
	$(PY) -m pip install -q -e '.[all,test]'
	touch $(STAMP)

setup: $(STAMP)

# Debian packages the integration tests drive for real (docker engine, registry, sshd, ...).
system:
	bash scripts/setup-system.sh

# link_baseline first: split_resnet's analytic lower bound uses the link it measured.
demo: setup
	$(VENV)/bin/pytest testcases/link_baseline --lan=$(LAN) --collab-report html -p no:cacheprovider -q
	$(VENV)/bin/pytest testcases/split_resnet --lan=$(LAN) --collab-report html -p no:cacheprovider

test: setup system
	bash scripts/run-tests.sh

# No system services: the container, emulated-lab and SSH folders need them.
unit: setup
	$(VENV)/bin/pytest tests -p no:cacheprovider -q --ignore=tests/docker --ignore=tests/emulated --ignore=tests/ssh

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: setup system
	bash scripts/run-benchmarks.sh

# The shipped bundles CI replays, re-made on the emulated lab from the current code.
bundles: setup system
	bash scripts/remake-bundles.sh

clean:
	rm -rf $(VENV) reports/2*
