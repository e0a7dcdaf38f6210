package config

import (
	"errors"
	"fmt"
	"strings"
)

// problems collects every error found in a configuration so that the
// operator sees all of them at once instead of fixing one per run.
type problems struct {
	errs []error
}

// add records a problem with key (a dotted path such as "io.queues[1]")
// and no value.
func (p *problems) add(key, format string, args ...any) {
	p.addErr(fmt.Errorf("config: %s: %s", key, fmt.Sprintf(format, args...)))
}

// addv records a problem with key and the value the operator wrote: strings
// are quoted after a space (io.interface "eth9"), everything else follows an
// equals sign (io.queues[1]=3), so the message shows exactly what to change.
func (p *problems) addv(key string, value any, format string, args ...any) {
	p.addErr(fmt.Errorf("config: %s: %s", keyValue(key, value), fmt.Sprintf(format, args...)))
}

// addErr records err as one line: the joined error promises one problem
// per line, and TOML error messages can quote input holding newlines.
func (p *problems) addErr(err error) {
	if msg := err.Error(); strings.ContainsFunc(msg, isControl) {
		err = errors.New(oneLine(msg))
	}
	p.errs = append(p.errs, err)
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// oneLine escapes control characters so that s prints on one line.
func oneLine(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case isControl(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func (p *problems) err() error {
	return errors.Join(p.errs...)
}

func keyValue(key string, value any) string {
	if s, ok := value.(string); ok {
		return fmt.Sprintf("%s %q", key, s)
	}
	return fmt.Sprintf("%s=%v", key, value)
}

// Warning is a problem that does not stop the appliance but that the
// operator should know about (a generated secret, a debug endpoint exposed).
type Warning struct {
	// Key is the dotted key the warning is about ("node.secret").
	Key string
	// Message says what happens and what to do about it.
	Message string
}

// String formats the warning like the errors: "config: key: message".
func (w Warning) String() string { return "config: " + w.Key + ": " + w.Message }
