# The two commands: `make demo` (try it, no account anywhere) and `make test`.
GO       ?= go
PORT     ?= 8080
# DATA, when set, is the demo's data directory, kept after exit.
DATA     ?=
BENCHFLAGS ?=
# FUZZTIME, when set (e.g. 60s or 1000000x), is every fuzz target's budget.
# By default each runs a count of inputs, about 10 s on the reference
# machine: a duration budget in Go 1.26 can fail a target with a bare
# "context deadline exceeded" when it runs out (go.dev/issue/75804, fixed
# in Go 1.27); a count has no deadline to race.
FUZZTIME ?=
BIN      ?= bin/switchboard
# TAGS are the build tags of every binary and test built here (test/bench
# builds the gateway with the same; TestGatewayTagsAreTheMakefiles checks).
# stdjson makes the Telegram client, telego, encode and decode with
# encoding/json instead of its default, github.com/grbit/go-json, whose
# type caches held 8 MB more heap in a connected gateway
# (docs/benchmarks.md, eleventh change). A build without it works the same.
TAGS     ?= stdjson
# Every go command a target runs takes them from GOFLAGS (one place, so a
# new target cannot miss them); a -tags on a command line would override.
export GOFLAGS += -tags=$(TAGS)
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: demo test build vet fmt-check deps-check fuzz deps bench bench-store clean

## demo: run the webchat against a local Selarti simulator on http://127.0.0.1:$(PORT)/chat/ (DATA=dir keeps the history)
# Built, then run, not `go run`: go run exits 1 after an interrupt even
# when the program stopped cleanly, and make would report Ctrl+C as an error.
demo: build
	$(BIN) demo --port $(PORT)$(if $(DATA), --data $(DATA))

## build: build the binary into $(BIN)
build:
	$(GO) build -trimpath -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/switchboard

## test: everything CI runs: static checks, all tests with -race (end-to-end and browser included), short fuzzing
test: deps vet fmt-check deps-check
	scripts/with-postgres.sh $(GO) test -race -count=1 $$($(GO) list ./... | grep -v /test/crash)
	scripts/with-postgres.sh $(GO) test -race -count=1 -v ./test/crash/   # -v: it prints its figures
	$(MAKE) --no-print-directory fuzz

## deps: install what the tests need beyond Go (headless Chromium for the browser test)
deps:
	@scripts/ensure-chromium.sh

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

## deps-check: the core never imports an adapter; adapters and the kit never link the engine, echo, viper, Prometheus or a SQL driver
deps-check:
	@GO=$(GO) TAGS="$(TAGS)" scripts/check-deps.sh

## fuzz: run every fuzz target of outside input (about 10 s each; FUZZTIME=60s for longer)
fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzParseChatID$$' -fuzztime=$(or $(FUZZTIME),90000x) ./core/engine/
	$(GO) test -run='^$$' -fuzz='^FuzzParseWebhook$$' -fuzztime=$(or $(FUZZTIME),200000x) ./core/selarti/
	$(GO) test -run='^$$' -fuzz='^FuzzWebhookAgainstEncodingJSON$$' -fuzztime=$(or $(FUZZTIME),100000x) ./core/selarti/
	$(GO) test -run='^$$' -fuzz='^FuzzClientFrame$$' -fuzztime=$(or $(FUZZTIME),15000x) ./adapters/webchat/
	$(GO) test -run='^$$' -fuzz='^FuzzInbound$$' -fuzztime=$(or $(FUZZTIME),90000x) ./adapters/discord/
	$(GO) test -run='^$$' -fuzz='^FuzzInbound$$' -fuzztime=$(or $(FUZZTIME),150000x) ./adapters/slack/
	$(GO) test -run='^$$' -fuzz='^FuzzTelegramHTML$$' -fuzztime=$(or $(FUZZTIME),130000x) ./kit/richtext/
	$(GO) test -run='^$$' -fuzz='^FuzzDiscordMarkdown$$' -fuzztime=$(or $(FUZZTIME),150000x) ./kit/richtext/
	$(GO) test -run='^$$' -fuzz='^FuzzSlackMrkdwn$$' -fuzztime=$(or $(FUZZTIME),160000x) ./kit/richtext/
	$(GO) test -run='^$$' -fuzz='^FuzzPlainText$$' -fuzztime=$(or $(FUZZTIME),190000x) ./kit/richtext/
	$(GO) test -run='^$$' -fuzz='^FuzzSafeHTML$$' -fuzztime=$(or $(FUZZTIME),140000x) ./kit/richtext/

## bench: the end-to-end load benchmark, gateway against a bare relay, webchat and Telegram users (about 17 to 20 minutes; BENCHFLAGS=-quick for about 4); see docs/benchmarks.md
bench:
	$(GO) run ./test/bench $(BENCHFLAGS)

## bench-store: the store benchmark (see docs/benchmarks.md)
bench-store:
	$(GO) test -run='^$$' -bench=. -benchtime=2s ./core/store/

clean:
	rm -rf bin data
