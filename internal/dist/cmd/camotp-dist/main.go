// Command camotp-dist builds camotp's release files into a directory:
// `make dist` runs it (see package dist).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"

	"github.com/camotp/camotp/internal/dist"
)

func main() {
	var cfg dist.Config
	var arches string
	flag.StringVar(&cfg.Root, "root", ".", "the source tree")
	flag.StringVar(&cfg.Out, "out", "dist", "where the files go")
	flag.StringVar(&cfg.Version, "version", "", "the version to stamp (e.g. git describe)")
	flag.StringVar(&cfg.VersionVar, "version-var", "", "the string variable -ldflags -X sets to the version")
	flag.StringVar(&arches, "arch", "amd64,arm64", "GOARCH values, comma-separated")
	flag.Parse()
	cfg.Arches = strings.Split(arches, ",")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	files, err := dist.Build(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "camotp-dist:", err)
		os.Exit(1)
	}
	for _, p := range append(append(files.Binaries, files.Debs...), files.Sums) {
		fmt.Println(p)
	}
}
