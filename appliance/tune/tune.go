package tune

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"sipedge/appliance/config"
)

// Host is the machine as tune sees it: files under Root (the live one is
// "/": /sys, /proc) and the NIC settings through Ethtool.
type Host struct {
	Root    string
	Ethtool Ethtool
	// Unit includes the installed service's CPUAffinity in the plan (off
	// in tests that tune a live interface, so they never write a drop-in
	// for a unit another test installed meanwhile).
	Unit bool
}

// LiveHost is this machine.
func LiveHost() Host { return Host{Root: "/", Ethtool: Live(), Unit: true} }

func (h Host) path(p string) string { return filepath.Join(h.Root, p) }

// read returns a file's content without its trailing newline.
func (h Host) read(p string) (string, error) {
	b, err := os.ReadFile(h.path(p))
	return strings.TrimSpace(string(b)), err
}

func (h Host) write(p, v string) error {
	f, err := os.OpenFile(h.path(p), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, err = io.WriteString(f, v+"\n")
	return errors.Join(err, f.Close())
}

// State says how an Item compares.
type State int

const (
	// OK: the system is as it should be.
	OK State = iota
	// Change: it differs and Apply can change it.
	Change
	// Manual: it differs and needs the operator (a boot parameter, a
	// service, the configuration itself).
	Manual
	// Unknown: it could not be read; Is says why.
	Unknown
)

func (s State) String() string {
	return [...]string{"ok", "change", "manual", "unknown"}[s]
}

// Item is one line of the plan.
type Item struct {
	// Name says what is compared, such as "channels" or "irq 45 (queue 0)".
	Name string
	// Is and Should are what is there and what [io] needs.
	Is, Should string
	// Command does it by hand (ethtool, sysctl, a boot parameter).
	Command string
	// Why is the reason, shown with the item.
	Why   string
	State State
	apply func() error
	// reshapes: applying it renumbers what later items read (a channel
	// change reallocates the queue IRQs), so Apply stops after it.
	reshapes bool
}

// Plan is everything tune compared, in a stable order.
type Plan struct {
	Interface string
	Items     []Item
}

// Differs counts the items that are not OK (Unknown counts: the operator
// should look).
func (p *Plan) Differs() int {
	n := 0
	for _, it := range p.Items {
		if it.State != OK {
			n++
		}
	}
	return n
}

// Write prints the plan as a table an operator reads: what is, what should
// be, and the command.
func (p *Plan) Write(w io.Writer) {
	for _, it := range p.Items {
		fmt.Fprintf(w, "[%s] %s: is %s", it.State, it.Name, it.Is)
		if it.State != OK {
			fmt.Fprintf(w, ", should be %s", it.Should)
		}
		fmt.Fprintln(w)
		if it.State != OK {
			if it.Why != "" {
				fmt.Fprintf(w, "    why: %s\n", it.Why)
			}
			if it.Command != "" {
				fmt.Fprintf(w, "    run: %s\n", it.Command)
			}
		}
	}
	fmt.Fprintf(w, "%d of %d items differ\n", p.Differs(), len(p.Items))
}

// Warnings are the items that differ, one line each, for start-up logs
// and `appliance check`.
func (p *Plan) Warnings() []string {
	var out []string
	for _, it := range p.Items {
		if it.State == OK {
			continue
		}
		s := fmt.Sprintf("tune: %s is %s, should be %s", it.Name, it.Is, it.Should)
		if it.Command != "" {
			s += " (" + it.Command + ")"
		}
		out = append(out, s)
	}
	return out
}

// Apply carries out the Change items in order and returns how many it
// changed and the errors of those it could not. It stops after a change
// that renumbers what the rest of the plan read (channels: the driver
// reallocates the queue IRQs); Tune makes a fresh plan and goes on.
func (p *Plan) Apply() (changed int, err error) {
	var errs []error
	for _, it := range p.Items {
		if it.State != Change || it.apply == nil {
			continue
		}
		if e := it.apply(); e != nil {
			errs = append(errs, fmt.Errorf("tune: %s: %w (by hand: %s)", it.Name, e, it.Command))
			continue
		}
		changed++
		if it.reshapes {
			break
		}
	}
	return changed, errors.Join(errs...)
}

// Tune applies plans until nothing is left to change (a few rounds at
// most: one per reshaping change) and returns how many changes it made and
// the final plan. On a tuned system it changes nothing.
func Tune(h Host, io config.IO) (changed int, final *Plan, err error) {
	for range 4 {
		p := Make(h, io)
		n, err := p.Apply()
		changed += n
		if err != nil || n == 0 {
			return changed, Make(h, io), err
		}
	}
	return changed, Make(h, io), nil
}

// Make compares the host with io and returns the plan. With an interface
// (afxdp) it covers the NIC; the system items (busy-poll knobs, CPU
// isolation, irqbalance) always.
func Make(h Host, io config.IO) *Plan {
	p := &Plan{Interface: io.Interface}
	if io.Port == "afxdp" && io.Interface != "" {
		p.nic(h, io)
	}
	p.busyPoll(h, io)
	p.isolation(h, io)
	if h.Unit {
		p.unitAffinity(h, io)
	}
	return p
}

func (p *Plan) add(it Item) { p.Items = append(p.Items, it) }

// unknown records an item that could not be read.
func (p *Plan) unknown(name string, err error, should string) {
	if errors.Is(err, ErrNotSupported) {
		p.add(Item{Name: name, Is: "not supported by this driver", Should: should, State: OK})
		return
	}
	p.add(Item{Name: name, Is: "unreadable: " + err.Error(), Should: should, State: Unknown})
}
