package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"sipedge/afxdp/vethtest"
	"sipedge/bench/echo"
)

func main() {
	packets := flag.Int("packets", 100000, "datagrams per port")
	payload := flag.Int("payload", 600, "UDP payload bytes")
	rate := flag.Int("rate", 0, "sender cap in packets/s (0: paced by the unanswered window only)")
	window := flag.Int("window", 128, "most unanswered datagrams (veth's ring drops beyond 256)")
	ports := flag.String("ports", "afxdp,socket", "ports to run, in order: afxdp, socket")
	timeout := flag.Duration("timeout", 60*time.Second, "bound on each port's run")
	flag.Parse()
	if *payload > 1472 {
		fmt.Fprintln(os.Stderr, "echo: payload above 1472 bytes does not fit one 1500-byte MTU frame; lower -payload")
		os.Exit(2)
	}
	v, err := vethtest.Create(vethtest.Options{IPv4Only: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	rs, err := echo.Run(v, echo.Options{Packets: *packets, Payload: *payload, Rate: *rate, Window: *window,
		Ports: strings.Split(*ports, ","), Timeout: *timeout})
	if cerr := v.Close(); cerr != nil {
		fmt.Fprintln(os.Stderr, cerr)
	}
	echo.WriteTable(os.Stdout, rs)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
