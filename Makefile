# tdproof — build and test entry points. `make test` is what CI runs.
GO          ?= go
STATICCHECK ?= $(shell $(GO) env GOPATH)/bin/staticcheck
STATICCHECK_VERSION ?= v0.8.2
FUZZTIME    ?= 5m

.PHONY: all build test fmt-check vet staticcheck unit bench loadtest fuzz tools

all: build

# The version: the nearest tag (or the commit) and whether the tree was
# dirty; the commit itself comes from Go's VCS stamp (tdproof --version).
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS     := -X github.com/tdproof/tdproof/internal/cli.version=$(VERSION)

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/tdproof ./cmd/tdproof

# The test command of README.md and CI: formatting, vet, staticcheck, race tests.
test: fmt-check vet staticcheck unit

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

staticcheck: tools
	$(STATICCHECK) ./...

unit:
	$(GO) test -race -count=1 ./...

tools:
	@test -x $(STATICCHECK) || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

bench:
	$(GO) test -run='^$$' -bench=. -benchmem -count=10 ./dcap/ ./pcs/pcscache/ ./measure/

# Bounded load tests of the product (docs/performance.md): tdproof serve as a
# child process (SQLite; PostgreSQL with TDPROOF_TEST_POSTGRES_DSN) and the
# key broker handshake.
loadtest:
	$(GO) test -count=1 -run 'TestServeLoad|TestKBSHandshakeLoad' -v ./internal/loadtest/ \
		-loadtest.serve.n 20000 -loadtest.serve.d 10s -loadtest.serve.c 8 -loadtest.kbs.n 2000 -loadtest.kbs.c 8

# Long fuzzing, one target at a time (FUZZTIME each).
fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzParseQuote$$' -fuzztime=$(FUZZTIME) ./quote/
	$(GO) test -run='^$$' -fuzz='^FuzzParsePCKExtension$$' -fuzztime=$(FUZZTIME) ./pckcert/
	$(GO) test -run='^$$' -fuzz='^FuzzParseTCBInfo$$' -fuzztime=$(FUZZTIME) ./collateral/
	$(GO) test -run='^$$' -fuzz='^FuzzParseQEIdentity$$' -fuzztime=$(FUZZTIME) ./collateral/
	$(GO) test -run='^$$' -fuzz='^FuzzVerifyFailClosed$$' -fuzztime=$(FUZZTIME) ./dcap/
	$(GO) test -run='^$$' -fuzz='^FuzzJCS$$' -fuzztime=$(FUZZTIME) ./jcs/
	$(GO) test -run='^$$' -fuzz='^FuzzParseEventLog$$' -fuzztime=$(FUZZTIME) ./eventlog/
	$(GO) test -run='^$$' -fuzz='^FuzzParseRuntimeEvent$$' -fuzztime=$(FUZZTIME) ./eventlog/
	$(GO) test -run='^$$' -fuzz='^FuzzReport$$' -fuzztime=$(FUZZTIME) ./internal/report/
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeSCALE$$' -fuzztime=$(FUZZTIME) ./dstack/
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeMsgpack$$' -fuzztime=$(FUZZTIME) ./dstack/
	$(GO) test -run='^$$' -fuzz='^FuzzParseEvidence$$' -fuzztime=$(FUZZTIME) ./dstack/
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeItem$$' -fuzztime=$(FUZZTIME) ./pcs/
	$(GO) test -run='^$$' -fuzz='^FuzzDecodePCKCert$$' -fuzztime=$(FUZZTIME) ./pcs/
	$(GO) test -run='^$$' -fuzz='^FuzzParseTDVF$$' -fuzztime=$(FUZZTIME) ./measure/
	$(GO) test -run='^$$' -fuzz='^FuzzParseTDHOBWitness$$' -fuzztime=$(FUZZTIME) ./measure/
	$(GO) test -run='^$$' -fuzz='^FuzzAuthenticode$$' -fuzztime=$(FUZZTIME) ./measure/
	$(GO) test -run='^$$' -fuzz='^FuzzParseLiteMeasurement$$' -fuzztime=$(FUZZTIME) ./measure/
