# shoal — see README.md. Every target works on a machine with only Go
# installed; FUSE tests mount as root with go-fuse's DirectMount.

GO      ?= go
BIN     := bin/shoal
PKGS    := ./...
# The whole suite must stay well under 15 minutes on 2 cores.
TEST_TIMEOUT ?= 14m

.PHONY: all build test vet unit demo bench proto verify-proto fuzz clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/shoal

vet:
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }

# test: vet, then every test — unit, cluster, FUSE and process-level —
# with the race detector.
test: vet
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(PKGS)

# unit: the quick pass, no mounts or process-level tests.
unit:
	$(GO) test -short -count=1 $(PKGS)

demo: build
	./$(BIN) demo

bench: build
	./scripts/bench.sh

proto:
	./scripts/genproto.sh

verify-proto: proto
	git diff --exit-code proto/

# fuzz: a short run of every fuzz target (the seed corpora run in 'test').
FUZZTIME ?= 20s
fuzz:
	@for p in $$($(GO) list $(PKGS)); do \
	  for f in $$($(GO) test -list '^Fuzz' $$p | grep '^Fuzz'); do \
	    echo "== $$p $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$p || exit 1; \
	  done; \
	done

clean:
	rm -rf bin .cache
