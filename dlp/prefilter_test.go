package dlp

import (
	"reflect"
	"regexp"
	"regexp/syntax"
	"strings"
	"testing"
)

// plainMatches is what findAll must equal: one FindAllIndex over the whole
// text, empty matches dropped.
func plainMatches(re *regexp.Regexp, text []byte) [][2]int {
	return appendLocs(nil, re, text, 0)
}

func checkPrefilterAgrees(t testing.TB, expr string, text []byte) {
	re, err := regexp.Compile(expr)
	if err != nil {
		return
	}
	tree, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return
	}
	p := pattern{re: re, pf: newPrefilter(tree.Simplify())}
	got, _ := p.findAll(text, nil, nil)
	want := plainMatches(re, text)
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("pattern %q on %q:\nprefiltered %v\nwhole text  %v", expr, text, got, want)
	}
}

var differentialTexts = []string{
	"", "a", "AKIAIOSFODNN7EXAMPLE", "xAKIAIOSFODNN7EXAMPLEy AKIA1234567890ABCDEF",
	"mail bob@example.com, alice@test.org; x@y", "ssn 123-45-6789 and 1234-56-7890 and 123-45-67890",
	"card 4111 1111 1111 1111 4111-1111-1111-1111 41111111111111111",
	"PASSWORD = hunter2\nsecret:abc token=\ttok to\u212Aen: x ſecret: y",
	"-----BEGIN RSA PRIVATE KEY-----\nMIIE", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc_def-123",
	"xoxb-1234567890-abc xoxp-", "10.0.0.1 256.1.1.1 1.2.3 1.2.3.4.5", "ghp_" + strings.Repeat("a", 36),
	"\xff\xfeAKIA\xe2\x84\xaa é😀 \x00\n\n", "aaaa bbbb 1234\n5678",
}

func TestPrefilterFindsExactlyTheMatchesOfAWholeTextScan(t *testing.T) {
	exprs := append([]string{}, typicalPatterns...)
	exprs = append(exprs,
		`(?m)^key$`, `\Akey`, `key\z`, `(?i)k`, `(?i)ſ`, `[^a]+`, `.`, `(?s).+`, `\bfoo\b`, `a|b|c`, `x*`,
		`[\x{FFFD}]`, `\x{FFFD}+`, `é+`, `(?i)é`, `abc|`, `[a-z]{2,}@`, `(?U)a+`, `ab+?c`,
		`[^\x00-\x{10FFFF}]`, `(?i)password|[0-9]{3}`, `\d{3}(-\d{4})?`, `(?i)TOKEN\s*[:=]`,
	)
	for i := 0; i+1 < len(typicalPatterns); i += 2 {
		exprs = append(exprs, typicalPatterns[i+1])
	}
	for _, expr := range exprs {
		for _, text := range differentialTexts {
			checkPrefilterAgrees(t, expr, []byte(text))
		}
		checkPrefilterAgrees(t, expr, toolResult4KB(strings.Join(differentialTexts, " ")))
	}
}

func TestPrefilterIsUsedForTheTypicalPatterns(t *testing.T) {
	s := newScanner(t, nil, typicalPatterns...)
	for _, p := range s.patterns {
		if !p.pf.ok {
			t.Errorf("%s: no prefilter", p.name)
		}
	}
}
