package harness

import (
	"fmt"
	"strings"
)

// WaitModes are the appliance's [io] wait modes (issue 10): "adaptive"
// spins up to [io] spin after traffic then blocks in the kernel, "busy"
// never sleeps, "block" always sleeps in the kernel.
var WaitModes = []string{"adaptive", "busy", "block"}

// Variant is one proxy the end-to-end and capacity parts run: Kamailio,
// or the appliance on one port in one wait mode.
type Variant struct {
	Name string
	// Port is "" for Kamailio, else the appliance's io.port: "socket" or
	// "afxdp".
	Port string
	// Wait is the appliance's io.wait; "" writes no wait key (the
	// binary's own default), for appliances older than issue 10.
	Wait string
}

// Appliance reports whether the variant is the appliance.
func (v Variant) Appliance() bool { return v.Port != "" }

// ParseVariant reads a proxy name: "kamailio", "appliance-PORT" (the
// binary's default wait) or "appliance-PORT-WAIT", PORT socket or afxdp,
// WAIT one of WaitModes.
func ParseVariant(name string) (Variant, error) {
	if name == Kamailio {
		return Variant{Name: name}, nil
	}
	bad := fmt.Errorf("harness: unknown proxy %q (want %s, or appliance-PORT-WAIT with PORT socket or afxdp and WAIT %s; appliance-PORT alone leaves [io] wait out)",
		name, Kamailio, strings.Join(WaitModes, ", "))
	rest, ok := strings.CutPrefix(name, "appliance-")
	if !ok {
		return Variant{}, bad
	}
	port, wait, _ := strings.Cut(rest, "-")
	if port != "socket" && port != "afxdp" {
		return Variant{}, bad
	}
	if wait != "" && !contains(WaitModes, wait) {
		return Variant{}, bad
	}
	return Variant{Name: name, Port: port, Wait: wait}, nil
}

// ApplianceVariants lists appliance-PORT-WAIT for every port and wait mode,
// socket first.
func ApplianceVariants() []string {
	var out []string
	for _, p := range []string{"socket", "afxdp"} {
		for _, w := range WaitModes {
			out = append(out, "appliance-"+p+"-"+w)
		}
	}
	return out
}
