package config

import (
	"fmt"
	"time"
)

// Duration is a time.Duration written in TOML as a string such as "2s" or
// "500ms" (time.ParseDuration syntax), and printed back the same way.
type Duration time.Duration

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String formats d as time.Duration does ("2s", "1m30s").
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText writes d in time.ParseDuration syntax.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses a time.ParseDuration string. A bare number is
// refused: the unit must be explicit so "5" is never read as nanoseconds.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q: want a duration with its unit, such as \"2s\" or \"500ms\"", b)
	}
	*d = Duration(v)
	return nil
}
