# nixfleet.containers: developer and CI entry points.
# The README documents two commands, `make demo` and `make test`; both run as root on a fresh
# Debian 12 machine from a fresh clone and install what they need (`make deps`).
# NIXFLEET_LAB_ID (a digit, default 0) selects which lab labctl drives; it passes through.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

REPO := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
COLLECTION := nixfleet.containers
PYTHON ?= python3

VENV := $(REPO)/.venv
BIN := $(VENV)/bin
VENV_STAMP := $(VENV)/.requirements.stamp
BUILD := $(REPO)/.build
TREE_LINK := $(BUILD)/ansible_collections/nixfleet/containers
SANITY_TREE := $(BUILD)/sanity/ansible_collections/nixfleet/containers
# ansible-test keeps its venvs and the get-pip cache under ~/.ansible/test: use our own HOME.
TEST_HOME := $(BUILD)/home
DIST := $(BUILD)/dist
INSTALLED := $(BUILD)/installed
LABCTL := $(REPO)/tests/lab/labctl

# The venv's tools first, so `#!/usr/bin/env python` scripts and ansible-test find them.
export PATH := $(BIN):$(PATH)
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# Lazily expanded: the venv exists by the time a recipe needs it.
PYVER = $(shell $(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')

# `labctl down` if labctl exists (it is optional while the lab is being written).
LAB_DOWN = if [ -x $(LABCTL) ]; then $(LABCTL) down || echo "make: labctl down failed" >&2; fi

ANSIBLE_TEST = cd $(SANITY_TREE) && HOME=$(TEST_HOME) ANSIBLE_TEST_CONTENT_ROOT=$(SANITY_TREE) \
	$(BIN)/ansible-test

.PHONY: help deps system-deps lab-root venv tree sanity-tree sanity units lint build-check unit \
	integration molecule test demo clean artifact docs ee ee-image soak

help:
	@echo "make test   - every gate: sanity, units, lint, build-check, pytest (unit + integration), molecule"
	@echo "make demo   - bring the lab up, run playbooks/demo.yml once (rollout, canary, rollback), lab down"
	@echo "              (KEEP_LAB=1 leaves the lab up)"
	@echo "make docs   - the HTML docs site (every plugin and role, docs/*.md) in .build/docs/html"
	@echo "make ee     - an execution environment's build context (ansible-builder create) in .build/ee/context;"
	@echo "              make ee-image builds the image with podman or docker (docs/awx.md)"
	@echo "make soak   - the fault soak on the lab: ROUNDS=200 SEED=1234 (tests/integration/faults/soak.py)"
	@echo "parts: deps tree sanity units lint build-check unit integration molecule artifact clean"

# ---- dependencies -------------------------------------------------------------------------

deps: system-deps venv lab-root

# The systemd lab's Debian root, built once per machine into /var/cache/nixfleet-lab.
lab-root: system-deps
	@$(LABCTL) root >/dev/null

system-deps:
	@$(REPO)/tools/install-system-deps $(REPO)/bindep.txt

venv: $(VENV_STAMP)

# Installed in place when a requirements file changes (the stamp is older than it);
# a venv whose interpreter is gone is created anew.
$(VENV_STAMP): $(REPO)/requirements-dev.txt $(REPO)/requirements.txt
	@if ! $(BIN)/python -c '' 2>/dev/null; then \
		echo "make: creating $(VENV)"; rm -rf $(VENV); $(PYTHON) -m venv $(VENV); fi
	@echo "make: installing requirements-dev.txt into $(VENV)"
	@$(BIN)/python -m pip install -q -r $(REPO)/requirements-dev.txt
	@touch $@

# ---- collection trees ---------------------------------------------------------------------

# pytest (pythonpath = .build) and ansible-playbook (collections_path = .build) see the
# collection through this symlink.
tree:
	@mkdir -p $(dir $(TREE_LINK))
	@if [ "$$(readlink $(TREE_LINK) 2>/dev/null)" != "../../.." ]; then \
		rm -rf $(TREE_LINK); ln -s ../../.. $(TREE_LINK); fi

# ansible-test resolves the real cwd, so it gets a copy (tracked + untracked-unignored files);
# build-check builds the artifact from the same copy.
sanity-tree: venv
	@$(BIN)/python $(REPO)/tools/sync-tree $(REPO) $(SANITY_TREE)
	@HOME=$(TEST_HOME) $(BIN)/python $(REPO)/tools/ansible-test-offline-pip >/dev/null

# ---- gates --------------------------------------------------------------------------------

sanity: sanity-tree
	$(ANSIBLE_TEST) sanity --local --python $(PYVER) --color no

units: sanity-tree
	@if [ -d $(SANITY_TREE)/tests/unit ]; then \
		$(ANSIBLE_TEST) units --venv --python $(PYVER) --color no; \
	else echo "make: no tests/unit, ansible-test units has nothing to run" >&2; exit 1; fi

# ansible-test's shellcheck sanity test only looks at *.sh; shell scripts named otherwise
# (.ci/run, tools/*) are checked here.
lint: venv tree
	cd $(REPO) && ANSIBLE_COLLECTIONS_PATH=$(BUILD) $(BIN)/ansible-lint
	@cd $(REPO) && scripts=(); \
	while IFS= read -r -d '' f; do \
		[[ -f $$f && $$f != *.sh ]] || continue; \
		IFS= read -r first < "$$f" || true; \
		[[ $$first =~ ^\#!(/usr/bin/env\ (ba)?sh|/bin/(ba)?sh) ]] && scripts+=("$$f"); \
	done < <(git ls-files -z -co --exclude-standard); \
	if (( $${#scripts[@]} )); then echo "shellcheck $${scripts[*]}"; shellcheck "$${scripts[@]}"; fi
	cd $(REPO) && $(BIN)/yamllint --strict .
	cd $(REPO) && $(BIN)/antsibull-changelog lint
	cd $(REPO) && $(BIN)/antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml
	cd $(REPO) && ANSIBLE_COLLECTIONS_PATH=$(BUILD) ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false \
		$(BIN)/antsibull-docs lint-collection-docs --plugin-docs .

# Build the artifact from the clean copy (what a fresh clone holds, no lab state) into
# $(DIST), and install it into the empty path $(INSTALLED).
artifact: sanity-tree
	@rm -rf $(DIST) $(INSTALLED)
	cd $(SANITY_TREE) && $(BIN)/ansible-galaxy collection build --output-path $(DIST) --force
	ANSIBLE_COLLECTIONS_PATH=$(INSTALLED) $(BIN)/ansible-galaxy collection install --offline --force -p $(INSTALLED) $(DIST)/nixfleet-containers-*.tar.gz

# Render every plugin's docs from the installed artifact.
build-check: artifact
	cd $(DIST) && ANSIBLE_COLLECTIONS_PATH=$(INSTALLED) ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false \
		$(BIN)/python $(REPO)/tools/doc-check $(INSTALLED)/ansible_collections/nixfleet/containers $(COLLECTION)

# ---- docs site and execution environment ---------------------------------------------------

# The HTML docs of what ships (the installed artifact): antsibull-docs + Sphinx (tools/build-docs).
DOCS := $(BUILD)/docs

docs: artifact
	ANSIBLE_COLLECTIONS_PATH=$(INSTALLED) ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false \
		$(BIN)/python $(REPO)/tools/build-docs $(COLLECTION) $(REPO)/docs $(DOCS)

# tools/ee/execution-environment.yml next to the artifact, then `ansible-builder create`:
# the build context (Containerfile, _build/) in $(EE)/context. No container engine needed.
EE := $(BUILD)/ee
EE_ENGINE ?= $(shell command -v podman >/dev/null && echo podman || echo docker)

ee: artifact
	@rm -rf $(EE) && mkdir -p $(EE)/definition
	cp $(REPO)/tools/ee/execution-environment.yml $(EE)/definition/
	cp $(DIST)/nixfleet-containers-*.tar.gz $(EE)/definition/nixfleet-containers.tar.gz
	$(BIN)/ansible-builder create --file $(EE)/definition/execution-environment.yml \
		--context $(EE)/context --output-filename Containerfile -v 1

ee-image: ee
	@command -v $(EE_ENGINE) >/dev/null || { echo "make ee-image: needs podman or docker" >&2; exit 1; }
	$(BIN)/ansible-builder build --file $(EE)/definition/execution-environment.yml \
		--context $(EE)/context --container-runtime $(EE_ENGINE) -v 2

# ---- pytest -------------------------------------------------------------------------------

unit: venv tree
	cd $(REPO) && $(BIN)/python -m pytest tests/unit

integration: deps tree
	@cd $(REPO) && trap '$(LAB_DOWN)' EXIT && $(BIN)/python -m pytest tests/integration

# ---- fault soak ---------------------------------------------------------------------------

# Random fleet changes rolled out through the roles while random faults hit, invariants checked
# after every round (tests/integration/faults/soak.py, docs/soak.md). Uses the lab of
# NIXFLEET_LAB_ID when it is up, else brings one up (and down again).
ROUNDS ?= 20
SEED ?= 1234
SOAK_HOSTS ?= 2

soak: deps tree
	cd $(REPO) && $(BIN)/python tests/integration/faults/soak.py --rounds $(ROUNDS) --seed $(SEED) --hosts $(SOAK_HOSTS)

# ---- molecule -----------------------------------------------------------------------------

# The roles end to end (extensions/molecule/<scenario>, docs/molecule.md): one `molecule test`
# per scenario, one after another (each brings its lab up and down); every scenario runs even
# when an earlier one failed; each one's time is printed. Its own HOME keeps ~/.ansible apart.
MOLECULE_SCENARIOS ?= default fleet nat faults
MOLECULE_HOME := $(BUILD)/molecule-home

molecule: deps tree
	@mkdir -p $(MOLECULE_HOME)
	@cd $(REPO) && trap '$(LAB_DOWN)' EXIT; failed=(); times=(); \
	for scenario in $(MOLECULE_SCENARIOS); do \
		start=$$EPOCHREALTIME; \
		HOME=$(MOLECULE_HOME) ANSIBLE_COLLECTIONS_PATH=$(BUILD) $(BIN)/molecule test -s $$scenario \
			|| failed+=("$$scenario"); \
		times+=("$$(awk -v n="$$scenario" -v s="$$start" -v e="$$EPOCHREALTIME" \
			'BEGIN { printf "%-8s %6.1f s", n, e - s }')"); \
	done; \
	printf 'make molecule: %s\n' "$${times[@]}"; \
	if (( $${#failed[@]} )); then echo "make molecule: FAILED: $${failed[*]}" >&2; exit 1; fi

# Every gate runs even when an earlier one fails (one run reports everything); unit and
# integration tests run in ONE pytest session so its summary counts all of them (pytest's
# exit 5, "no tests ran", is a failure); the lab is always taken down.
# (No $(MAKE) in this recipe: it would make `make -n test` run it for real.)
test: deps tree
	@cd $(REPO) && trap '$(LAB_DOWN)' EXIT; \
	PYTEST="$(BIN)/python -m pytest" $(REPO)/tools/run-gates sanity units lint build-check pytest molecule

# ---- demo ---------------------------------------------------------------------------------

DEMO_LOG := $(BUILD)/demo
DEMO_PLAYBOOK ?= playbooks/demo.yml

demo: deps tree
	@if [ ! -x $(LABCTL) ]; then echo "make demo: $(LABCTL) is missing" >&2; exit 1; fi
	@mkdir -p $(DEMO_LOG)
	@cd $(REPO) && trap 'if [ "$${KEEP_LAB:-0}" != 1 ]; then $(LAB_DOWN); else echo "make demo: lab left up (KEEP_LAB=1)"; fi' EXIT; \
	$(LABCTL) up >/dev/null; \
	inventory=$$($(LABCTL) inventory); \
	export ANSIBLE_CONFIG=$$(dirname "$$inventory")/ansible.cfg ANSIBLE_COLLECTIONS_PATH=$(BUILD); \
	echo "make demo: rollout, canary batches, a broken change rolled back (the summaries are printed)"; \
	$(BIN)/ansible-playbook -i "$$inventory" $(DEMO_PLAYBOOK) | tee $(DEMO_LOG)/run.log; \
	$(BIN)/python $(REPO)/tools/check-recap $(DEMO_LOG)/run.log

clean:
	@$(LAB_DOWN)
	rm -rf $(BUILD) $(REPO)/tests/output
