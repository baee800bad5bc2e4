# authnode — run `make help` for the targets.

GO            ?= go
BIN           := bin
GOLANGCI_LINT_VERSION := v2.15.0
GOLANGCI_LINT := $(BIN)/golangci-lint
VERSION       ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS       := -s -w -X main.version=$(VERSION)
TEST_TIMEOUT  ?= 15m
BENCH_TIME    ?= 1s
FUZZ_TIME     ?= 10s

.DEFAULT_GOAL := help
.PHONY: help build run test unit lint fmt bench fuzz proto proto-check tidy-check monitoring deps clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build bin/authnode (static)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/authnode ./cmd/authnode

run: build ## run a development node on loopback: demo policy, dev signing key, ready-to-paste curl and grpcurl commands
	scripts/run.sh

test: deps ## the whole suite, with the race detector (what CI runs)
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

unit: ## the quick inner loop: every package, no race detector
	$(GO) test -count=1 -timeout 5m ./...

lint: $(GOLANGCI_LINT) ## golangci-lint (pinned) and gofmt
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GOLANGCI_LINT) run ./...

fmt: ## format the code
	gofmt -w $$(git ls-files '*.go')

bench: ## hot-path benchmarks (figures go to docs/BENCHMARKS.md)
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCH_TIME) ./ring ./shard ./auth ./node

fuzz: ## run every fuzz test for FUZZ_TIME each (a duration, default 10s, or a count like 5000x)
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeMeta$$' -fuzztime $(FUZZ_TIME) ./cluster
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeRequests$$' -fuzztime $(FUZZ_TIME) ./transport
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZ_TIME) ./redisfallback
	$(GO) test -run '^$$' -fuzz '^FuzzAllows$$' -fuzztime $(FUZZ_TIME) ./auth
	$(GO) test -run '^$$' -fuzz '^FuzzValidate$$' -fuzztime $(FUZZ_TIME) ./auth
	$(GO) test -run '^$$' -fuzz '^FuzzDecodePolicy$$' -fuzztime $(FUZZ_TIME) ./store

proto: deps ## regenerate code from proto/
	scripts/proto.sh

proto-check: proto ## fail when generated code is not current
	@test -z "$$(git status --porcelain -- proto transport/peerpb transport/authpb)" || (git status --short -- proto transport/peerpb transport/authpb; echo "generated code is stale: run make proto and commit"; exit 1)

tidy-check: ## fail when go.mod or go.sum need go mod tidy
	$(GO) mod tidy
	@git diff --exit-code -- go.mod go.sum || (echo "go.mod/go.sum not tidy: run go mod tidy and commit"; exit 1)

monitoring: deps ## check monitoring/: promtool check rules, promtool test rules, the dashboard's JSON
	scripts/monitoring.sh

deps: ## install what the suite needs (Debian packages; as root, or prints the command)
	scripts/deps.sh

clean: ## remove build output
	rm -rf $(BIN)

$(GOLANGCI_LINT):
	GOBIN=$(CURDIR)/$(BIN) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
