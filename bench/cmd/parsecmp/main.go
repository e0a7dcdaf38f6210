package main

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"sipedge/bench/parsecmp"
)

func main() {
	testing.Init()
	dir := flag.String("messages", "../sipcore/testdata/bench", "folder of *.sip messages to parse")
	benchtime := flag.String("benchtime", "1s", "time per parser per message")
	flag.Parse()
	if err := flag.Set("test.benchtime", *benchtime); err != nil {
		fmt.Fprintln(os.Stderr, "parsecmp:", err)
		os.Exit(2)
	}
	msgs, err := parsecmp.Load(*dir)
	if err == nil {
		err = parsecmp.Check(msgs)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "parsecmp: %d messages, %s per parser per message\n", len(msgs), *benchtime)
	parsecmp.WriteTable(os.Stdout, parsecmp.Run(msgs))
}
