package chain

import (
	"strings"
)

// Markdown renders the chain for the README: a one-line drawing of the
// path a datagram takes ("port -> guard -> ... -> port"), then a table of
// the stages in order with what each declares in its StageDef: its config
// section, what it decides (Doc), whether it parks, and its counter
// families (its drop family, DropsMetric, first). The output depends on
// nothing but the declarations, so the README's copy can be checked
// (TestREADMEChain).
func (c Chain) Markdown() string {
	var b strings.Builder
	b.WriteString("```text\nport")
	for _, d := range c {
		b.WriteString(" -> ")
		b.WriteString(d.Name)
	}
	b.WriteString(" -> port\n```\n\n")
	b.WriteString("| stage | section | decides | parks | counters |\n")
	b.WriteString("|---|---|---|---|---|\n")
	for _, d := range c {
		section := "-"
		if d.Section != "" {
			section = "`" + d.Section + "`"
		}
		parks := "no"
		if d.Parks {
			parks = "yes"
		}
		var fams []string
		if d.DropsMetric != "" {
			fams = append(fams, "`"+d.DropsMetric+"`")
		}
		for _, cd := range d.Counters {
			fams = append(fams, "`"+cd.Name+"`")
		}
		counters := "-"
		if len(fams) > 0 {
			counters = strings.Join(fams, ", ")
		}
		b.WriteString("| " + cell(d.Name) + " | " + section + " | " + cell(d.Doc) + " | " + parks + " | " + counters + " |\n")
	}
	return b.String()
}

// cell makes s safe inside a Markdown table cell: one line, no bare pipe.
func cell(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.ReplaceAll(s, "|", `\|`)
}
