package policy

import (
	"strings"
	"testing"
)

func TestArgPatternTakesTheTableOnlyForPrefixAndClassPatterns(t *testing.T) {
	for _, tt := range []struct {
		pattern string
		simple  bool
	}{
		{`^/data/[a-z0-9_./-]+$`, true},
		{`^https://api\.example\.com/[\w/-]*$`, true},
		{`^[a-z]+$`, true},
		{`^exact$`, true},
		{`^$`, true},
		{`^(?i)/data/[a-z]+$`, false},
		{`^/data/[é]+$`, false},
		{`^/data/.+$`, false},
		{`^\x{FFFD}[a-z]+$`, false},
		{`/data/[a-z]+$`, false},
		{`^/data/[a-z]+`, false},
		{`(?m)^/data/[a-z]+$`, false},
		{`^/data/[a-z]+\.txt$`, false},
		{`^/data/[a-z]{2,}$`, false},
		{`^(/data/[a-z]+)$`, false},
	} {
		p, err := compileArgPattern(tt.pattern)
		if err != nil {
			t.Fatalf("%s: %v", tt.pattern, err)
		}
		if p.simple != tt.simple {
			t.Errorf("%s: simple = %v, want %v", tt.pattern, p.simple, tt.simple)
		}
	}
}

func TestArgPatternMatchesAsTheRegexp(t *testing.T) {
	patterns := []string{`^/data/[a-z0-9_./-]+$`, `^/data/[a-z]*$`, `^[a-z]+$`, `^exact$`, `^$`, `^é/[0-9]+$`}
	inputs := []string{"", "/data/", "/data/x", "/data/report-1.txt", "/data/../etc", "/data/X", "/data/x\n",
		"/data/x\xff", "/data/é", "exact", "exact\n", "é/12", "\xc3/12", "/DATA/x", "abc", "ab1", strings.Repeat("a", 300)}
	for _, pattern := range patterns {
		p, err := compileArgPattern(pattern)
		if err != nil || !p.simple {
			t.Fatalf("%s: simple %v, err %v", pattern, p.simple, err)
		}
		for _, in := range inputs {
			if got, want := p.match([]byte(in)), p.re.MatchString(in); got != want {
				t.Errorf("%s on %q: %v, regexp %v", pattern, in, got, want)
			}
			if got, want := p.matchString(in), p.re.MatchString(in); got != want {
				t.Errorf("%s on %q (string): %v, regexp %v", pattern, in, got, want)
			}
		}
	}
}

// FuzzArgPattern holds the byte-table shortcut to RE2's answers, for any
// pattern and any input.
func FuzzArgPattern(f *testing.F) {
	for _, s := range [][2]string{
		{`^/data/[a-z0-9_./-]+$`, "/data/report-1.txt"}, {`^/data/[a-z]*$`, "/data/\xff"}, {`^x$`, "x\n"},
		{`^é[^a]+$`, "éb"}, {`^(?i)k[a-z]+$`, "\u212aab"}, {`^[\x00-\x7f]+$`, "\x00\x7f"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, in string) {
		p, err := compileArgPattern(pattern)
		if err != nil {
			return
		}
		if got, want := p.match([]byte(in)), p.re.MatchString(in); got != want {
			t.Fatalf("%q on %q: %v (simple %v), regexp %v", pattern, in, got, p.simple, want)
		}
		if got, want := p.matchString(in), p.re.MatchString(in); got != want {
			t.Fatalf("%q on %q (string): %v (simple %v), regexp %v", pattern, in, got, p.simple, want)
		}
	})
}
