package sipgen

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"

	"sipedge/sipcore"
)

// User is one subscriber of the generated traffic.
type User struct {
	Name     string
	Realm    string
	Password string // never written to the users file
	HA1MD5   string // hex(MD5(name:realm:password))
	HA1SHA   string // hex(SHA-256(name:realm:password))
}

// userName is caller i's user name: numeric, like a PBX extension.
func userName(i int) string { return strconv.Itoa(200000 + i) }

// user returns caller i's credentials, derived from the seed.
func (g *Generator) user(i int) User {
	pw := fmt.Sprintf("%016x", mix64(uint64(g.cfg.Seed)^0x5157_0000_0000_0000, uint64(i)))
	name := userName(i)
	return User{
		Name: name, Realm: g.cfg.Realm, Password: pw,
		HA1MD5: sipcore.HA1(sipcore.AlgMD5, name, g.cfg.Realm, pw),
		HA1SHA: sipcore.HA1(sipcore.AlgSHA256, name, g.cfg.Realm, pw),
	}
}

// User returns caller i's credentials (0 <= i < Config.Callers).
func (g *Generator) User(i int) User { return g.user(i) }

// WriteUsers writes the users file (format in the package documentation)
// for every caller, streaming, one line per user.
func (g *Generator) WriteUsers(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	fmt.Fprintf(bw, "# sipgen users file (seed %d): username realm HA1-MD5 HA1-SHA-256\n", g.cfg.Seed)
	fmt.Fprintf(bw, "# HA1 = hex(H(username:realm:password)); passwords are not stored.\n")
	for i := 0; i < g.cfg.Callers; i++ {
		u := g.user(i)
		fmt.Fprintf(bw, "%s %s %s %s\n", u.Name, u.Realm, u.HA1MD5, u.HA1SHA)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("sipgen: write users file: %w", err)
	}
	return nil
}

// ReadUsers parses a users file. Every error names the line and what is
// wrong with it. Passwords are left empty.
func ReadUsers(r io.Reader) ([]User, error) {
	var out []User
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 4 {
			return nil, fmt.Errorf("users file line %d: %d fields; want 4: username realm HA1-MD5 HA1-SHA-256", n, len(f))
		}
		if err := sipcore.CheckHA1(sipcore.AlgMD5, []byte(f[2])); err != nil {
			return nil, fmt.Errorf("users file line %d: HA1-MD5: %w", n, err)
		}
		if err := sipcore.CheckHA1(sipcore.AlgSHA256, []byte(f[3])); err != nil {
			return nil, fmt.Errorf("users file line %d: HA1-SHA-256: %w", n, err)
		}
		out = append(out, User{Name: f[0], Realm: f[1], HA1MD5: f[2], HA1SHA: f[3]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("users file: %w", err)
	}
	return out, nil
}
