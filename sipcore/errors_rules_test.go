package sipcore

import "testing"

func TestParseRulesIndexed(t *testing.T) {
	rules := ParseRules()
	if len(rules) < 40 {
		t.Fatalf("%d parse rules", len(rules))
	}
	seen := map[string]bool{}
	for i, k := range rules {
		if ParseRuleIndex(k) != i || ParseRuleIndex(&ParseError{Kind: k}) != i {
			t.Errorf("rule %s: index %d, want %d", k.Rule, ParseRuleIndex(k), i)
		}
		if seen[k.Rule] {
			t.Errorf("rule %s twice", k.Rule)
		}
		seen[k.Rule] = true
	}
	if ParseRuleIndex(ErrTooManyHops) != -1 || ParseRuleIndex(nil) != -1 {
		t.Error("a kind Parse never returns has an index")
	}
	var m Msg
	if err := Parse([]byte("garbage\r\n\r\n"), &m); ParseRuleIndex(err) < 0 {
		t.Errorf("Parse error %v has no index", err)
	}
}
