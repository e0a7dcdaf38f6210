package config

// The guard's trust keys: backends' own limits and how many User-Agent
// signature matches ban a source.

const maxBackendRate = 1000000

func (g *Guard) setTrustDefaults() {
	g.BackendRate, g.BackendBurst, g.ScannerMatches = 100000, 100000, 5
}

func (g *Guard) checkTrust(p *problems) {
	if g.BackendRate < 1 || g.BackendRate > maxBackendRate {
		p.addv("guard.backend_rate", g.BackendRate, "want 1 to %d messages a second per backend", maxBackendRate)
	}
	if g.BackendBurst < 1 || g.BackendBurst > maxBackendRate {
		p.addv("guard.backend_burst", g.BackendBurst, "want 1 to %d messages at once per backend", maxBackendRate)
	}
	if g.ScannerMatches < 1 || g.ScannerMatches > 1000 {
		p.addv("guard.scanner_matches", g.ScannerMatches, "want 1 to 1000 User-Agent matches before a ban")
	}
}
