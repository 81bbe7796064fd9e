# camotp — see README.md. `make run` is the main job; `make test` is what CI runs.
GO       ?= go
BIN      := bin/camotp
DATA     ?= .camotp
PKGS     := ./...

.PHONY: all build run test bench lint fmt fuzz clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/camotp

# The main job: the emulated Body 4 camera in this terminal (state under $(DATA)).
run: build
	@test -f $(DATA)/camera/identity.json || ./$(BIN) camera init --state $(DATA)/camera --serial DEMO-BC4-0001 --model body4
	./$(BIN) camera run --state $(DATA)/camera --ui tui

test:
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 $(PKGS)

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin
