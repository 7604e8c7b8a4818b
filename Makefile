# meshconform: two commands for a fresh machine.
#   make test   unit tests (no clusters)
#   make e2e    the main job: machine setup, images, clusters, suites, teardown
SHELL := /bin/bash
GO ?= go
ARTIFACTS ?= $(CURDIR)/artifacts
export MESHCONFORM_ARTIFACTS := $(ARTIFACTS)
# suites/e2e runs platform → install → uninstall → teardown on one pair of clusters;
# E2E_SUITES="platform install" runs the suites one by one instead.
E2E_SUITES ?= e2e
E2E_TIMEOUT ?= 80m
GINKGO_FLAGS ?= -ginkgo.v -ginkgo.timeout=$(E2E_TIMEOUT)

.PHONY: test e2e bench setup clean

test:
	$(GO) vet ./...
	$(GO) test ./e2e/... ./fixtures/...

setup:
	@if [ "$$(id -u)" = 0 ]; then bash scripts/setup-docker.sh; else sudo bash scripts/setup-docker.sh; fi

# Each suite writes JUnit and Ginkgo JSON under artifacts/<suite>/.
e2e: setup
	@rm -rf $(ARTIFACTS) && mkdir -p $(ARTIFACTS)
	@rc=0; for s in $(E2E_SUITES); do \
	  mkdir -p $(ARTIFACTS)/$$s; \
	  echo "== suite $$s"; \
	  $(GO) test -v ./suites/$$s -count=1 -timeout=$(E2E_TIMEOUT) -args $(GINKGO_FLAGS) \
	    -ginkgo.junit-report=$(ARTIFACTS)/$$s/junit.xml -ginkgo.json-report=$(ARTIFACTS)/$$s/ginkgo.json || rc=1; \
	done; exit $$rc

# The main job, then its timings and figures as a benchmark record
# (artifacts/bench/<istio>-<time>.json) to compare between versions.
bench: e2e
	$(GO) run ./cmd/meshconform bench

# Removes whatever a killed run left: clusters, registry, network (not the cache).
clean:
	$(GO) run ./cmd/meshconform clean
