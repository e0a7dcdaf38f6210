package sipedge

import _ "embed"

// DefaultConfig is config.toml, the documented default configuration that
// `appliance` uses when no -c is given. Treat it as read-only.
//
//go:embed config.toml
var DefaultConfig []byte
