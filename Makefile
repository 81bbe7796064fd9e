# camotp — see README.md. `make run` is the main job; `make test` is what CI runs.
GO       ?= go
BIN      := bin/camotp
DATA     ?= .camotp
PKGS     := ./...
# What camotp --version prints: the commit (with -dirty for local changes),
# or "dev" outside a git checkout.
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
VERSION_VAR := github.com/camotp/camotp/internal/version.Version

.PHONY: all build run test bench lint fmt fuzz clean dist

all: build

build:
	$(GO) build -ldflags "-X $(VERSION_VAR)=$(VERSION)" -o $(BIN) ./cmd/camotp

# The main job: the whole product in one command (server + embedded broker +
# SQLite under $(DATA), demo officers, provisioned cameras, the emulator of one).
CAMERA ?=
run: build
	./$(BIN) demo --data $(DATA) $(if $(CAMERA),--camera $(CAMERA))

test:
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 $(PKGS)

bench: build
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)
	./$(BIN) bench verify --duration 10s
	./$(BIN) bench radius
	./$(BIN) bench provision --cameras 1000

# Every Fuzz* target in the repo, one after the other (go test -fuzz takes one
# target per run) for FUZZTIME each; FUZZPARALLEL workers (default: one per
# core). Their seed corpora (f.Add and testdata/fuzz/) run in `make test`.
# A run that ends in "context deadline exceeded" without writing a failing
# input is Go 1.26's fuzztime race (go.dev/issue/75804, fixed in Go 1.27),
# not a finding: it is reported and counted as clean.
FUZZTIME     ?= 30s
FUZZPARALLEL ?=
fuzz:
	@failed=""; log=$$(mktemp); \
	for file in $$(grep -rl --include='*_test.go' '^func Fuzz' . | sort); do \
	  dir=$$(dirname $$file); \
	  for target in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$file); do \
	    echo "== $$dir $$target ($(FUZZTIME))"; \
	    if $(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) \
	        $(if $(FUZZPARALLEL),-parallel $(FUZZPARALLEL)) $$dir/ >$$log 2>&1; then \
	      grep 'fuzz: elapsed' $$log | tail -n 1; tail -n 1 $$log; \
	    elif grep -q '^    context deadline exceeded' $$log && ! grep -q 'Failing input written' $$log; then \
	      grep 'fuzz: elapsed' $$log | tail -n 1; \
	      echo "clean: ended by Go's fuzztime race (go.dev/issue/75804), no failing input"; \
	    else \
	      cat $$log; failed="$$failed $$dir:$$target"; \
	    fi; \
	  done; \
	done; \
	rm -f $$log; \
	if [ -n "$$failed" ]; then echo "fuzz failures:$$failed"; exit 1; fi

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin

# Release files in dist/: static binaries for linux/amd64 and arm64 with the
# version stamped, a .deb of each, SHA256SUMS (see internal/dist).
dist:
	$(GO) run ./internal/dist/cmd/camotp-dist -out dist -version $(VERSION) -version-var $(VERSION_VAR)
