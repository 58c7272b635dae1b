# tdproof — build and test entry points. `make test` is what CI runs.
GO          ?= go
STATICCHECK ?= $(shell $(GO) env GOPATH)/bin/staticcheck
STATICCHECK_VERSION ?= v0.8.2
FUZZTIME    ?= 5m

.PHONY: all build image test test-full fmt-check vet staticcheck unit bench loadtest fuzz tools

all: build

# The version: the nearest tag (or the commit) and whether the tree was
# dirty; the commit itself comes from Go's VCS stamp (tdproof --version).
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS     := -X github.com/tdproof/tdproof/internal/cli.version=$(VERSION)

build:
	$(GO) build -buildvcs=true -trimpath -ldflags "$(LDFLAGS)" -o bin/tdproof ./cmd/tdproof

# The container image (deploy/container/Containerfile): a static binary and
# the host's CA bundle on scratch, built with buildah (or podman build).
BUILDAH     ?= buildah
IMAGE       ?= tdproof:$(VERSION)
image:
	CGO_ENABLED=0 $(GO) build -buildvcs=true -trimpath -ldflags "$(LDFLAGS)" -o deploy/container/tdproof ./cmd/tdproof
	cp /etc/ssl/certs/ca-certificates.crt deploy/container/ca-certificates.crt
	$(BUILDAH) bud -f deploy/container/Containerfile -t $(IMAGE) deploy/container

# The test command of README.md: formatting, vet, staticcheck, race tests;
# it ends with the list of skipped tests and why they skipped (PostgreSQL,
# Debian artifacts, real evidence in ../shared/testdata).
test: fmt-check vet staticcheck unit

# What CI runs (.ci/run): make test with a throwaway PostgreSQL cluster
# (scripts/start-postgres.sh; installs Debian's postgresql if missing) and
# the Debian OVMF and kernel (scripts/fetch-debian-artifacts.sh; network),
# and, where buildah is installed, the container image build and smoke test
# (deploy/image_test.go), so the tests that skip without them run.
test-full:
	@set -e; \
	if dir="$$(scripts/fetch-debian-artifacts.sh)"; then export TDPROOF_DEBIAN_DIR="$$dir"; \
	else echo "test-full: Debian artifacts unavailable; the measure tests that need them will skip" >&2; fi; \
	TDPROOF_TEST_POSTGRES_DSN="$$(scripts/start-postgres.sh)"; export TDPROOF_TEST_POSTGRES_DSN; \
	export TDPROOF_REQUIRE_POSTGRES=1; \
	if command -v $(BUILDAH) >/dev/null; then export TDPROOF_TEST_IMAGE=1; \
	else echo "test-full: $(BUILDAH) not installed (apt-get install buildah); the image is linted, not built" >&2; fi; \
	echo "test-full: PostgreSQL $$TDPROOF_TEST_POSTGRES_DSN, Debian artifacts $${TDPROOF_DEBIAN_DIR:-none}, image build $${TDPROOF_TEST_IMAGE:-0}"; \
	$(MAKE) test

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

staticcheck: tools
	$(STATICCHECK) ./...

# internal/cli runs tdproof end to end (serve, the broker, Chromium, the
# CLI/service parity table): minutes under -race, beyond go test's 10m default
# on a loaded 2-core machine.
unit:
	$(GO) run ./internal/cmd/testsummary -race -count=1 -timeout=30m ./...

tools:
	@test -x $(STATICCHECK) || { echo "tools: installing staticcheck $(STATICCHECK_VERSION) (needs the Go module proxy, or a module cache that has it)"; \
		$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION); }

bench:
	$(GO) test -run='^$$$$' -bench=. -benchmem -count=10 ./dcap/ ./pcs/pcscache/ ./measure/ ./snp/ ./dstack/ ./claims/ ./ear/ ./verifier/ ./jsonappend/

# Bounded load tests of the product (docs/performance.md): tdproof serve as a
# child process (SQLite; PostgreSQL with TDPROOF_TEST_POSTGRES_DSN): /v1/verify,
# dstack's /verify beside it, and key broker handshakes against the server alone;
# and the in-process key broker handshake.
loadtest:
	$(GO) test -count=1 -run 'TestServeLoad|TestServeDstackLoad|TestServeKBSLoad|TestKBSHandshakeLoad' -v ./internal/loadtest/ \
		-loadtest.serve.n 20000 -loadtest.serve.d 10s -loadtest.serve.c 8 -loadtest.serve.rounds 5 -loadtest.kbs.n 2000 -loadtest.kbs.c 8

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
	$(GO) test -run='^$$' -fuzz='^FuzzNativeDecodeFast$$' -fuzztime=$(FUZZTIME) ./internal/verifiersvc/
	$(GO) test -run='^$$' -fuzz='^FuzzDstackShapeFast$$' -fuzztime=$(FUZZTIME) ./internal/verifiersvc/
	$(GO) test -run='^$$' -fuzz='^FuzzAppraisalAppendJSON$$' -fuzztime=$(FUZZTIME) ./policy/
	$(GO) test -run='^$$' -fuzz='^FuzzString$$' -fuzztime=$(FUZZTIME) ./jsonappend/
	$(GO) test -run='^$$' -fuzz='^FuzzMarshalMatchesTree$$' -fuzztime=$(FUZZTIME) ./claims/
	$(GO) test -run='^$$' -fuzz='^FuzzAttestationFast$$' -fuzztime=$(FUZZTIME) ./kbs/protocol/
	$(GO) test -run='^$$' -fuzz='^FuzzTDXEvidenceFast$$' -fuzztime=$(FUZZTIME) ./kbs/protocol/
	$(GO) test -run='^$$' -fuzz='^FuzzSkipValue$$' -fuzztime=$(FUZZTIME) ./jsonscan/
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeStrict$$' -fuzztime=$(FUZZTIME) ./kbs/protocol/
	$(GO) test -run='^$$' -fuzz='^FuzzJSONValue$$' -fuzztime=$(FUZZTIME) ./internal/kbs/
	$(GO) test -run='^$$' -fuzz='^FuzzOpenCookie$$' -fuzztime=$(FUZZTIME) ./internal/kbs/
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeSCALE$$' -fuzztime=$(FUZZTIME) ./dstack/
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeMsgpack$$' -fuzztime=$(FUZZTIME) ./dstack/
	$(GO) test -run='^$$' -fuzz='^FuzzParseEvidence$$' -fuzztime=$(FUZZTIME) ./dstack/
	$(GO) test -run='^$$' -fuzz='^FuzzParseCertificate$$' -fuzztime=$(FUZZTIME) ./dstack/
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeItem$$' -fuzztime=$(FUZZTIME) ./pcs/
	$(GO) test -run='^$$' -fuzz='^FuzzDecodePCKCert$$' -fuzztime=$(FUZZTIME) ./pcs/
	$(GO) test -run='^$$' -fuzz='^FuzzParseTDVF$$' -fuzztime=$(FUZZTIME) ./measure/
	$(GO) test -run='^$$' -fuzz='^FuzzParseTDHOBWitness$$' -fuzztime=$(FUZZTIME) ./measure/
	$(GO) test -run='^$$' -fuzz='^FuzzAuthenticode$$' -fuzztime=$(FUZZTIME) ./measure/
	$(GO) test -run='^$$' -fuzz='^FuzzParseLiteMeasurement$$' -fuzztime=$(FUZZTIME) ./measure/
	$(GO) test -run='^$$' -fuzz='^FuzzParseSNPMeasurement$$' -fuzztime=$(FUZZTIME) ./measure/
	$(GO) test -run='^$$' -fuzz='^FuzzParseReport$$' -fuzztime=$(FUZZTIME) ./snp/
	$(GO) test -run='^$$' -fuzz='^FuzzParseCertificates$$' -fuzztime=$(FUZZTIME) ./snp/
	$(GO) test -run='^$$' -fuzz='^FuzzParseSNPAttestation$$' -fuzztime=$(FUZZTIME) ./dstack/
	$(GO) test -run='^$$' -fuzz='^FuzzParseMRConfigV3$$' -fuzztime=$(FUZZTIME) ./dstack/
