# make test runs everything CI runs (.ci/run calls it); make demo shows the plugin working.
GO ?= go
TEST_TIMEOUT ?= 45m

.PHONY: test deps unit traefik-tests e2e traefik demo bench soak fmt-check vet lint verify

## test: every test: unit tests with -race, the interpreter tests, the config-decoding
## tests and the end-to-end tests against a real Traefik (built once and cached). On a
## fresh machine it installs what it needs first (as root, with apt-get) or says what.
test: deps fmt-check vet unit traefik-tests

## deps: gcc, redis-server, php-cli and nodejs, installed where missing
deps:
	@./scripts/test-deps

unit:
	$(GO) test -race -count=1 ./...

traefik-tests: traefik
	cd test && TRAEFIK_BIN="$$(../scripts/traefik-bin)" $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

## e2e: the end-to-end tests alone, against the Traefik that TRAEFIK_BIN names or that
## TRAEFIK_VERSION builds from the Go module proxy (v3.6.12 when neither is set):
##   make e2e TRAEFIK_BIN=/usr/local/bin/traefik
##   make e2e TRAEFIK_VERSION=v3.5.3
e2e: traefik
	cd test && TRAEFIK_BIN="$$(../scripts/traefik-bin)" $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./e2e/...

## traefik: get the Traefik binary the tests and the demo use (TRAEFIK_BIN, the cache, or a build)
traefik:
	@./scripts/traefik-bin >/dev/null

## demo: Traefik with the plugin on 127.0.0.1:8080 in front of a demo backend
demo: traefik
	cd test && $(GO) run ./cmd/demo

## bench: every benchmark, then BENCHMARKS.md written from what they printed: a request
## natively and through Yaegi, each piece of its path, the hostile body shapes beside a
## plain one, memory (the store, idle clients), the budget of each path (genuine, three
## fields, duplicate, forged, Redis: calls, frame slots), and the load generator through a
## real Traefik (routes without middleware, with a pass-through plugin, with this one),
## side by side. BENCH_BASELINE is a git revision of the plugin measured in the same run,
## through Yaegi (ZEGO_BENCH_BASELINE, BenchmarkInterpretedBaseline) and through Traefik
## (loadgen -baseline), its figures beside this code's and the targets in the summary;
## d1b6120 is the code issue #18 set its targets against ("today's code"); empty for none:
##   make bench BENCH_BASELINE=HEAD~3 BENCH_TIME=1s BENCH_COUNT=1
BENCH_TIME ?= 2s
BENCH_COUNT ?= 3
BENCH_LOADGEN ?= -duration 4s -rounds 5 -conc 16,64
BENCH_BASELINE ?= d1b6120
bench: traefik
	cd test && TRAEFIK_BIN="$$(../scripts/traefik-bin)" ZEGO_BENCH_BASELINE="$(BENCH_BASELINE)" $(GO) run ./cmd/benchreport -out ../BENCHMARKS.md \
		-benchtime $(BENCH_TIME) -count $(BENCH_COUNT) -loadgen "$(BENCH_LOADGEN)" -baseline "$(BENCH_BASELINE)"

## soak: the long forms through a real Traefik: 100 000 callbacks at 64 connections, one in
## ten forged, stale, replayed or malformed (make test runs 10 000), then 200 reloads under
## load; each prints its figures (counts, req/s, RSS, goroutines, live heap)
SOAK_CALLBACKS ?= 100000
SOAK_RELOADS ?= 200
soak: traefik
	cd test && TRAEFIK_BIN="$$(../scripts/traefik-bin)" ZEGO_SOAK_CALLBACKS=$(SOAK_CALLBACKS) ZEGO_RELOADS=$(SOAK_RELOADS) \
		$(GO) test -count=1 -timeout 30m -run 'TestSoak|TestReloadUnderLoad|TestFullStoreThroughTraefik' -v ./e2e

fmt-check:
	@out="$$(gofmt -l $$(git ls-files '*.go'))"; if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...
	cd test && $(GO) vet ./...

## lint: golangci-lint (fetched from the Go module proxy at a pinned version)
GOLANGCI_LINT ?= $(GO) run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0
lint:
	$(GOLANGCI_LINT) run ./...
	cd test && $(GOLANGCI_LINT) run --config ../.golangci.yml ./...

## verify: formatting, vet, lint and every test
verify: lint test
