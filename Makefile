# camotp — see README.md. `make run` is the main job; `make test` is what CI runs.
GO       ?= go
BIN      := bin/camotp
DATA     ?= .camotp
PKGS     := ./...

.PHONY: all build run test bench lint fmt fuzz clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/camotp

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
	./$(BIN) bench provision --cameras 1000

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin
