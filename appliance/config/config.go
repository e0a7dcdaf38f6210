package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strings"

	"github.com/BurntSushi/toml"
)

// Config is the whole appliance configuration: one field per TOML section.
// Every field's type implements section; a test keeps it that way.
type Config struct {
	Node       Node       `toml:"node"`
	IO         IO         `toml:"io"`
	Admin      Admin      `toml:"admin"`
	Dispatcher Dispatcher `toml:"dispatcher"`
	Guard      Guard      `toml:"guard"`
	Auth       Auth       `toml:"auth"`
	Media      Media      `toml:"media"`
	Drain      Drain      `toml:"drain"`
	Registrar  Registrar  `toml:"registrar"`
	Log        Log        `toml:"log"`
}

// section is what each TOML section's type provides, so that the parser and
// the validator never need to know which sections exist.
type section interface {
	// setDefaults fills every key with its default; decoding then overwrites
	// the keys the file sets.
	setDefaults()
	// check reports every invalid value and impossible combination. sys is
	// nil when only machine-independent checks are wanted.
	check(p *problems, c *Config, sys System)
}

// afterDecoder is implemented by sections that need to complete themselves
// once decoded: defaults that depend on which keys were present (raw is the
// section as decoded into plain maps) or that are generated at load time.
type afterDecoder interface {
	afterDecode(raw map[string]any) []Warning
}

type namedSection struct {
	name string
	s    section
}

// sections lists c's sections in declaration order, found by reflection so
// that adding a section is adding a field.
func (c *Config) sections() []namedSection {
	rv := reflect.ValueOf(c).Elem()
	rt := rv.Type()
	out := make([]namedSection, 0, rt.NumField())
	for i := 0; i < rt.NumField(); i++ {
		s, ok := rv.Field(i).Addr().Interface().(section)
		if !ok {
			// Caught by TestEverySectionIsASection before it can ship.
			panic("config: field " + rt.Field(i).Name + " of Config does not implement section")
		}
		out = append(out, namedSection{name: tomlName(rt.Field(i)), s: s})
	}
	return out
}

func tomlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	if name == "" {
		return f.Name
	}
	return name
}

// Default returns a Config with every key at its default value. The node
// name and secret stay empty: Parse fills them at load time.
func Default() *Config {
	c := &Config{}
	for _, ns := range c.sections() {
		ns.s.setDefaults()
	}
	return c
}

// Load reads the TOML file at path and parses it as Parse does.
func Load(path string) (*Config, []Warning, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("config: reading %s: %w (give the file with -c, or leave -c out to use the embedded default)", path, err)
	}
	return Parse(data, path)
}

// Parse decodes a TOML configuration, fills in the defaults and generates
// what must be generated at load (the node name and, with a warning, the
// cluster secret). source names the data in error messages (a path).
//
// It rejects TOML syntax errors, values of the wrong type, unknown sections
// and unknown keys, all of them in one error with one problem per line. It
// does not check values: call Validate for that, or use Check for both.
func Parse(data []byte, source string) (*Config, []Warning, error) {
	c, warns, _, p := parse(data, source)
	if err := p.err(); err != nil {
		return nil, warns, err
	}
	return c, warns, nil
}

// Check is Parse followed by Validate, reporting the problems of both in
// one error: what `appliance check` runs. Sections that could not be decoded
// are not validated, so one mistake is not reported twice.
func Check(data []byte, source string, sys System) (*Config, []Warning, error) {
	c, warns, failed, p := parse(data, source)
	if c == nil {
		return nil, warns, p.err()
	}
	c.validate(&p, sys, failed)
	if err := p.err(); err != nil {
		return nil, warns, err
	}
	return c, warns, nil
}

// Validate checks every value and every combination of values, and, when
// sys is not nil, that the machine has what the configuration names (CPUs,
// interfaces, queues). It returns nil or one error listing every problem on
// its own line.
func (c *Config) Validate(sys System) error {
	var p problems
	c.validate(&p, sys, nil)
	return p.err()
}

func (c *Config) validate(p *problems, sys System, skip map[string]bool) {
	for _, ns := range c.sections() {
		if !skip[ns.name] {
			ns.s.check(p, c, sys)
		}
	}
}

// WriteTOML prints c as TOML that Parse reads back to an equal Config.
func (c *Config) WriteTOML(w io.Writer) error {
	var buf bytes.Buffer
	enc := toml.NewEncoder(&buf)
	enc.Indent = ""
	if err := enc.Encode(c); err != nil {
		return fmt.Errorf("config: encoding the effective configuration: %w", err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// parse returns the decoded config (nil only when the TOML itself is
// unreadable), the warnings, the sections that failed to decode and every
// problem found.
func parse(data []byte, source string) (*Config, []Warning, map[string]bool, problems) {
	var p problems
	var top map[string]toml.Primitive
	md, err := toml.Decode(string(data), &top)
	if err != nil {
		p.addErr(syntaxError(source, err))
		return nil, nil, nil, p
	}
	// The same document as plain maps, for the few defaults that depend on
	// whether a key is present inside an array of tables.
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		p.addErr(syntaxError(source, err))
		return nil, nil, nil, p
	}

	c := Default()
	sections := c.sections()
	known := make(map[string]bool, len(sections))
	for _, ns := range sections {
		known[ns.name] = true
	}
	for _, k := range md.Keys() {
		if len(k) != 1 || known[k[0]] {
			continue
		}
		if _, isTable := raw[k[0]].(map[string]any); isTable {
			p.add("["+k[0]+"]", "unknown section (the sections are %s; each is documented in config.toml)", sectionList(sections))
		} else {
			p.add(k.String(), "unknown key outside any section (keys belong in a section such as [node]; see config.toml)")
		}
	}

	failed := map[string]bool{}
	var warns []Warning
	for _, ns := range sections {
		prim, ok := top[ns.name]
		if !ok {
			continue
		}
		if err := md.PrimitiveDecode(prim, ns.s); err != nil {
			failed[ns.name] = true
			p.addErr(decodeError(source, ns.name, err))
		}
	}
	unknownKeys(&p, md, known, failed)
	for _, ns := range sections {
		if ad, ok := ns.s.(afterDecoder); ok && !failed[ns.name] {
			sec, _ := raw[ns.name].(map[string]any)
			warns = append(warns, ad.afterDecode(sec)...)
		}
	}
	return c, warns, failed, p
}

func sectionList(sections []namedSection) string {
	names := make([]string, len(sections))
	for i, ns := range sections {
		names[i] = "[" + ns.name + "]"
	}
	return strings.Join(names, ", ")
}

// unknownKeys reports the keys no field took, and the keys a field took only
// because the TOML decoder matches names case-insensitively.
func unknownKeys(p *problems, md toml.MetaData, known, failed map[string]bool) {
	schema := map[string]bool{}
	schemaKeys(reflect.TypeOf(Config{}), "", schema)

	undecoded := map[string]bool{}
	var reported []string
	for _, k := range md.Undecoded() {
		path := strings.Join(k, ".")
		undecoded[path] = true
		if !known[k[0]] || failed[k[0]] || underAny(path, reported) {
			continue
		}
		reported = append(reported, path)
		p.add(k.String(), "unknown key (%s)", suggest(path, schema))
	}
	for _, k := range md.Keys() {
		path := strings.Join(k, ".")
		if len(k) < 2 || !known[k[0]] || failed[k[0]] || undecoded[path] || schema[path] {
			continue
		}
		p.add(k.String(), "unknown key (%s)", suggest(path, schema))
	}
}

func underAny(path string, parents []string) bool {
	for _, parent := range parents {
		if strings.HasPrefix(path, parent+".") {
			return true
		}
	}
	return false
}

// schemaKeys collects the dotted path of every key and table of t.
func schemaKeys(t reflect.Type, prefix string, into map[string]bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() || f.Tag.Get("toml") == "-" {
			continue
		}
		path := tomlName(f)
		if prefix != "" {
			path = prefix + "." + path
		}
		into[path] = true
		ft := f.Type
		if ft.Kind() == reflect.Slice {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct {
			schemaKeys(ft, path, into)
		}
	}
}

// suggest names the known key closest to an unknown one, so a typo or a
// wrong case gets its fix in the message.
func suggest(path string, schema map[string]bool) string {
	parent, name := "", path
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		parent, name = path[:i], path[i+1:]
	}
	best, bestDist := "", 3
	for k := range schema {
		kp, kn := "", k
		if i := strings.LastIndexByte(k, '.'); i >= 0 {
			kp, kn = k[:i], k[i+1:]
		}
		if kp != parent {
			continue
		}
		d := editDistance(strings.ToLower(name), strings.ToLower(kn))
		if strings.EqualFold(name, kn) {
			d = 0
		} else if len(kn) >= 3 && (strings.HasPrefix(strings.ToLower(name), kn) || strings.HasPrefix(kn, strings.ToLower(name))) {
			d = min(d, 2) // batchsize for batch, interval_ms for interval
		}
		if d < bestDist || (d == bestDist && kn < best) {
			best, bestDist = kn, d
		}
	}
	if best != "" {
		if strings.EqualFold(best, name) {
			return fmt.Sprintf("keys are case-sensitive: write %s", best)
		}
		return fmt.Sprintf("did you mean %s? every key is documented in config.toml", best)
	}
	return "remove it; every key is documented in config.toml"
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func syntaxError(source string, err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("config: %s line %d: %s (TOML syntax: see https://toml.io)", source, pe.Position.Line, pe.Message)
	}
	return fmt.Errorf("config: %s: %w", source, err)
}

// tomlErr matches the decoder's type errors: toml: line 3 (last key "io.batch"): msg.
var tomlErr = regexp.MustCompile(`^toml: (?:line (\d+) )?\(last key "([^"]*)"\): (.*)$`)

// decodeError names the key that could not be decoded and where it is.
func decodeError(source, section string, err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) && pe.LastKey != "" {
		return fmt.Errorf("config: %s: %s (%s line %d)", pe.LastKey, pe.Message, source, pe.Position.Line)
	}
	if m := tomlErr.FindStringSubmatch(err.Error()); m != nil {
		where := source
		if m[1] != "" {
			where += " line " + m[1]
		}
		return fmt.Errorf("config: %s: %s (%s)", m[2], m[3], where)
	}
	return fmt.Errorf("config: [%s]: %s (%s)", section, strings.TrimPrefix(err.Error(), "toml: "), source)
}
