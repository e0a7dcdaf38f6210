package config

// Log is [log]: what the appliance logs and how.
type Log struct {
	// Level is the least severe level logged: "debug", "info", "warn" or
	// "error".
	Level string `toml:"level"`
	// Format is "text" (human-readable) or "json" (one object per line).
	Format string `toml:"format"`
}

func (l *Log) setDefaults() {
	*l = Log{Level: "info", Format: "text"}
}

func (l *Log) check(p *problems, _ *Config, _ System) {
	if !oneOf(l.Level, "debug", "info", "warn", "error") {
		p.addv("log.level", l.Level, `want "debug", "info", "warn" or "error"`)
	}
	if !oneOf(l.Format, "text", "json") {
		p.addv("log.format", l.Format, `want "text" or "json"`)
	}
}
