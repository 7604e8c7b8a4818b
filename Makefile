# meshconform: two commands for a fresh machine.
#   make test   unit tests (no clusters)
#   make e2e    the main job: machine setup, images, clusters, suites, teardown
#   make faults the seeded-fault suite
#   make resilience the mesh under control-plane and network faults
#   make upgrade Istio upgraded under traffic, canary with rollback and in place
#               (CI runs all four, and make byo)
#   make byo    bring your own clusters: up, test on them, doctor, bundle, verify, down
SHELL := /bin/bash
GO ?= go
# Every run writes to a directory of its own, artifacts/<UTC time>, and
# artifacts/latest points at the newest. Nothing is ever emptied: a run
# given an ARTIFACTS that holds files refuses; run directories past the
# newest KEEP_RUNS are removed (bench records, artifacts/bench, never).
ARTIFACTS_ROOT ?= $(CURDIR)/artifacts
RUN := $(shell date -u +%Y%m%dT%H%M%S.%NZ)
ARTIFACTS ?= $(ARTIFACTS_ROOT)/$(RUN)
KEEP_RUNS ?= 10
# suites/e2e runs platform → install → conformance → uninstall → teardown on one pair of clusters;
# E2E_SUITES="platform install" runs the suites one by one instead.
E2E_SUITES ?= e2e
# Ginkgo's limit for the whole run, in minutes ("80m"). go test's own alarm
# panics with no cleanup at all, so it rings only after Ginkgo's limit and
# the suites' cleanup budget (CLEANUP_MINUTES: the first failure's dump
# 5 min, AfterAll nodes up to 10, the teardown and its audit 10, margin;
# meshconform test gives the same, cmd/meshconform suiteCleanupBudget).
E2E_TIMEOUT ?= 80m
CLEANUP_MINUTES := 30
# E2E_LABELS='!resilience' runs only the specs whose labels match (Ginkgo's
# label filter); the others are reported skipped.
E2E_LABELS ?=
GINKGO_FLAGS ?= -ginkgo.v -ginkgo.timeout=$(E2E_TIMEOUT) $(if $(E2E_LABELS),'-ginkgo.label-filter=$(E2E_LABELS)')

.PHONY: test fresh-images e2e faults resilience upgrade byo byo-foreign interrupt-test prebuild bench setup clean

# Every Go file must be gofmt'ed; go vet has checked every package; -vet=off keeps go test from running
# its own vet pass over the same packages again.
# staticcheck, pinned, with staticcheck.conf, gates every package too.
# The unit tests run under the race detector: the samplers, the load
# generator and the report's writers are concurrent.
# The report page's browser test needs Debian's chromium: installed here
# (once, ~45 s) and required, so the test can never skip unnoticed.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
# actionlint, pinned, checks the workflow users copy (.github/workflows).
ACTIONLINT ?= github.com/rhysd/actionlint/cmd/actionlint@v1.7.12
test:
	@bash scripts/setup-chromium.sh
	@unformatted=$$("$$($(GO) env GOROOT)/bin/gofmt" -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	$(GO) run $(ACTIONLINT) .github/workflows/*.yml
	MESHCONFORM_REQUIRE_CHROMIUM=1 $(GO) test -race -vet=off ./e2e/... ./fixtures/... ./cmd/... ./suites/internal/... ./scripts/...
	$(GO) run ./cmd/meshconform images fresh-check

# A new machine's first minutes, whatever this machine's caches hold: the
# cheap images (registry, pause, sample apps) built from nothing into a
# throwaway cache and each started once in Docker (make test checks their
# files only). CI runs it before make e2e.
fresh-images: setup
	$(GO) run ./cmd/meshconform images fresh-check --start

setup:
	@if [ "$$(id -u)" = 0 ]; then bash scripts/setup-docker.sh; else sudo bash scripts/setup-docker.sh; fi

# new_run makes the run's own artifacts directory: never /, $HOME, the
# repository or the root of every run, never one holding files already;
# directly under ARTIFACTS_ROOT, it becomes artifacts/latest and the runs
# past the newest KEEP_RUNS go.
define new_run
	@case "$$(realpath -m $(ARTIFACTS))" in /|"$$(realpath -m $$HOME)"|"$$(realpath -m $(CURDIR))"|"$$(realpath -m $(ARTIFACTS_ROOT))") \
	  echo "ARTIFACTS=$(ARTIFACTS) is not a directory of one run's own: give another" >&2; exit 2;; esac
	@mkdir -p $(dir $(ARTIFACTS)) && { mkdir $(ARTIFACTS) 2>/dev/null || [ -z "$$(ls -A $(ARTIFACTS))" ]; } || { \
	  echo "ARTIFACTS=$(ARTIFACTS) holds an earlier run's files: give a new directory (meshconform empties none)" >&2; exit 2; }
	@if [ "$$(realpath -m $(dir $(ARTIFACTS)))" = "$$(realpath -m $(ARTIFACTS_ROOT))" ]; then \
	  ln -sfn $(notdir $(ARTIFACTS)) $(ARTIFACTS_ROOT)/latest; \
	  ls -1d $(ARTIFACTS_ROOT)/20*Z 2>/dev/null | sort | head -n -$$(( $(KEEP_RUNS) < 1 ? 1 : $(KEEP_RUNS) )) | xargs -r rm -rf; fi
endef

# Each suite writes JUnit and Ginkgo JSON under the run's <suite>/.
# A Ctrl-C or SIGTERM stops a run of several suites, not just the one
# running. Each suite is compiled (go test -c), then run as its own
# binary, from its package's directory as go test would: no go command
# stands between a signal and the suite (go test dies on SIGTERM at once,
# leaving its work directory in $TMPDIR and the suite writing to a closed
# pipe). The binaries' directory goes when the recipe does.
e2e: setup
	$(new_run)
	@rc=0; bin=$$(mktemp -d "$${TMPDIR:-/tmp}/meshconform-suites-XXXXXX"); \
	trap 'rm -rf "$$bin"' EXIT; trap 'exit 130' INT TERM; \
	go_timeout=$$(( $(patsubst %m,%,$(E2E_TIMEOUT)) + $(CLEANUP_MINUTES) ))m; \
	for s in $(E2E_SUITES); do \
	  mkdir -p $(ARTIFACTS)/$$s; \
	  echo "== suite $$s"; \
	  $(GO) test -c -o $$bin/$$s.test ./suites/$$s || { rc=1; continue; }; \
	  (cd suites/$$s && MESHCONFORM_ARTIFACTS=$(abspath $(ARTIFACTS)) $$bin/$$s.test -test.v -test.timeout=$$go_timeout $(GINKGO_FLAGS) \
	    -ginkgo.junit-report=$(abspath $(ARTIFACTS))/$$s/junit.xml -ginkgo.json-report=$(abspath $(ARTIFACTS))/$$s/ginkgo.json) || rc=1; \
	done; \
	$(GO) run ./cmd/meshconform report --artifacts $(ARTIFACTS) || echo "report page not written"; \
	if [ $$rc != 0 ]; then $(GO) run ./cmd/meshconform failures $(ARTIFACTS) || true; fi; \
	exit $$rc

# The seeded-fault suite: its own clusters and install, then fifteen faults,
# each caught and repaired (README, "Seeded faults"), then, on the same
# clusters and install, the resilience specs (make resilience runs them
# alone). Its report goes to artifacts/faults/, beside the main job's.
faults:
	$(new_run)
	$(MAKE) e2e E2E_SUITES=faults ARTIFACTS=$(ARTIFACTS)/faults

# The resilience suite: its own clusters and install, then istiod scaled to
# zero, the remote cut off from istiod (iptables on its nodes) and the
# propagation trials, each under traffic from every frontend, with istiod's
# metrics read through the run (README, "Resilience"). Its report goes to
# artifacts/resilience/.
resilience:
	$(new_run)
	$(MAKE) e2e E2E_SUITES=resilience ARTIFACTS=$(ARTIFACTS)/resilience

# The upgrade suite: Istio MESHCONFORM_UPGRADE_FROM (default 1.26.0) upgraded
# to MESHCONFORM_UPGRADE_TO (1.27.0) under continuous traffic, by canary with a
# rollback and in place (MESHCONFORM_UPGRADE_METHODS), on its own clusters.
# Its report, time lines and request records go to artifacts/upgrade/.
# A bench record of the run (artifacts/bench/upgrade/) follows, pass or fail,
# so two upgrade runs compare figure by figure.
upgrade:
	$(new_run)
	@rc=0; $(MAKE) e2e E2E_SUITES=upgrade ARTIFACTS=$(ARTIFACTS)/upgrade || rc=$$?; \
	MESHCONFORM_ARTIFACTS=$(ARTIFACTS)/upgrade $(GO) run ./cmd/meshconform bench report --records $(ARTIFACTS_ROOT)/bench/upgrade || true; \
	exit $$rc

# Bring your own clusters, as a vendor would: meshconform up, then test
# --kept --mesh existing (clusters left exactly as found), doctor, bundle,
# verify (and a one-byte-changed bundle refused), down. BYO_MODES="existing
# install" also runs test --mesh install on bare clusters; "renamed" runs
# the first flow on clusters named otherwise in a clusters file, their
# nodes stripped of region labels; "upgrade" runs the upgrade suite on bare
# clusters brought to it (it installs Istio's older version, upgrades it,
# removes everything) (scripts/byo.sh).
BYO_MODES ?= existing
byo: setup
	$(new_run)
	BYO_MODES="$(BYO_MODES)" ARTIFACTS=$(ARTIFACTS) bash scripts/byo.sh

# Certify a platform meshconform did not make (scripts/byo-foreign.sh): a
# pair of clusters made with kind's library under other names, none of the
# properties meshconform's clusters have, a mesh installed by hand, the
# sample apps from a private registry; test, doctor, bundle, verify.
byo-foreign: setup
	$(new_run)
	ARTIFACTS=$(ARTIFACTS) bash scripts/byo-foreign.sh

# The harness's own chaos check (scripts/interrupt-test.sh): make e2e
# interrupted by SIGINT and SIGTERM at four points, and two runs at once;
# nothing may be left. About 8 minutes warm.
interrupt-test: setup
	$(new_run)
	ARTIFACTS=$(ARTIFACTS) bash scripts/interrupt-test.sh

# Builds the upgrade suite's Istio versions into the cache, niced, without
# Docker (CI runs it beside make faults, whose cores are mostly idle).
prebuild:
	$(GO) run ./cmd/meshconform prebuild

# Runs the main job itself (make e2e, timed, with the machine's CPU sampled)
# and writes artifacts/bench/<istio>-<time>/bench.json and bench.md: wall
# time, CPU use, critical path, longest phases, figures.
# `make bench BENCH=cold` measures a fresh machine's caches: make test and
# make e2e with empty Go and meshconform caches (~15 GB, removed after),
# then make e2e warm. BENCH=report records the last run without running.
BENCH ?= warm
bench:
	MESHCONFORM_ARTIFACTS=$(ARTIFACTS_ROOT) $(GO) run ./cmd/meshconform bench $(BENCH) --records $(ARTIFACTS_ROOT)/bench

# Removes whatever a killed run left: clusters, registry, network (not the cache).
clean:
	$(GO) run ./cmd/meshconform clean
