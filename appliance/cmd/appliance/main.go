// Command appliance is the sipedge daemon.
package main

import (
	"fmt"
	"os"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	switch os.Args[1] {
	case "version":
		fmt.Println("sipedge appliance", version)
	case "run", "check":
		fmt.Fprintln(os.Stderr, "appliance: the daemon is not built yet (issue 4): for now sipedge is the sipcore library; run `make test` or `make bench-parse`")
		os.Exit(1)
	default:
		usage()
		os.Exit(2)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: appliance run -c config.toml | check -c config.toml | version")
}
