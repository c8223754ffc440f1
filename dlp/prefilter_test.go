package dlp

import (
	"reflect"
	"regexp"
	"regexp/syntax"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// plainMatches is what findAll must equal: one FindAllIndex over the whole
// text, empty matches dropped.
func plainMatches(re *regexp.Regexp, text []byte) [][2]int {
	return appendLocs(nil, re, text, 0)
}

func checkPrefilterAgrees(t testing.TB, expr string, text []byte) {
	p, err := compilePattern("", expr)
	if err != nil {
		return
	}
	got, _ := p.findAll(text, nil, nil, nil)
	want := plainMatches(p.re, text)
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
	"token=a token=b tokentoken: x\ntoken:", "xtoken:\xe2\x84\xaaen \xc3token=1 \xe2\x84token=2 é.1.2.3.4",
	"1.2.3.4.5.6.7.8 .1.1.1.1 1..2", "ab ab aab abab\nab", "password:  \n\tx secret= token",
	"api Token: s3cr3t", "SECRET=x", "AKIA1234567890ABCDEF-123-45-6789",
	"API_KEY=1 api\x7fkey=2 Api_Key =3", "X@Y x`y x@Y",
}

func TestRequiredSetHoldsAByteOfEveryMatch(t *testing.T) {
	for _, tt := range []struct {
		expr string
		want string // the bytes of the set; "-" when there is none
	}{
		{`(?i)(password|secret|token)\s*[:=]\s*\S+`, ":="},
		{`a|b`, "ab"},
		{`ab|c*`, "-"},
		{`x*`, "-"},
		{`x+y?`, "x"},
		{`x{2,}`, "x"},
		{`x{0,3}`, "-"},
		{`(?i)k`, "Kk\xe2"},
		{`(?i)s`, "Ss\xc5"},
		{`é`, "\xc3"},
		{`[a\x{FFFD}]`, "a" + highBytes()},
		{`\x{FFFD}`, "-"},
		{`\b`, "-"},
		{`.`, "-"},
	} {
		t.Run(tt.expr, func(t *testing.T) {
			re, err := syntax.Parse(tt.expr, syntax.Perl)
			if err != nil {
				t.Fatal(err)
			}
			set, _, ok := requiredSet(re.Simplify())
			got := "-"
			if ok {
				got = ""
				for b := 0; b < 256; b++ {
					if set.has(byte(b)) {
						got += string([]byte{byte(b)})
					}
				}
			}
			if got != tt.want {
				t.Errorf("requiredSet(%s) = %q, want %q", tt.expr, got, tt.want)
			}
		})
	}
}

func TestRequiresDigitWhenEveryMatchHoldsOne(t *testing.T) {
	var digits byteSet
	digits.addRange('0', '9')
	for expr, want := range map[string]bool{
		`\b\d{3}-\d{2}-\d{4}\b`:       true,
		`\b(?:\d{1,3}\.){3}\d{1,3}\b`: true,
		`\b(?:\d{4}[- ]?){3}\d{4}\b`:  true,
		`(AKIA|ASIA)[A-Z0-9]{16}`:     false,
		`x7|[0-3]+`:                   true,
		`x7|[0-3a]`:                   false,
		`\d?x`:                        false,
		`\d{0,2}`:                     false,
		`[^a-z]`:                      false,
		`(?i)1`:                       true,
		`[\x{FFFD}0]`:                 false,
		`(?i)(password|secret|token)`: false,
	} {
		re, err := syntax.Parse(expr, syntax.Perl)
		if err != nil {
			t.Fatal(err)
		}
		if got := requires(re.Simplify(), &digits); got != want {
			t.Errorf("requires(%s, digits) = %v, want %v", expr, got, want)
		}
	}
}

func TestHasDigitSeesADigitAtEveryOffset(t *testing.T) {
	for n := 0; n < 80; n++ {
		for at := -1; at < n; at++ {
			for _, c := range []byte{'0', '5', '9'} {
				text := []byte(strings.Repeat("/:\xb0\xb9a", 16)[:n])
				want := at >= 0
				if want {
					text[at] = c
				}
				if got := hasDigit(text); got != want {
					t.Fatalf("hasDigit(%q) = %v, want %v", text, got, want)
				}
			}
		}
	}
	for b := 0; b < 256; b++ {
		text := []byte("abcdefghijklmnop")
		text[9] = byte(b)
		if got, want := hasDigit(text), '0' <= b && b <= '9'; got != want {
			t.Errorf("hasDigit with byte %#x = %v, want %v", b, got, want)
		}
	}
}

func highBytes() string {
	var b []byte
	for c := 0x80; c < 0x100; c++ {
		b = append(b, byte(c))
	}
	return string(b)
}

func TestPrefilterFindsExactlyTheMatchesOfAWholeTextScan(t *testing.T) {
	exprs := append([]string{}, typicalPatterns...)
	exprs = append(exprs,
		`(?m)^key$`, `\Akey`, `key\z`, `(?i)k`, `(?i)ſ`, `[^a]+`, `.`, `(?s).+`, `\bfoo\b`, `a|b|c`, `x*`,
		`[\x{FFFD}]`, `\x{FFFD}+`, `é+`, `(?i)é`, `abc|`, `[a-z]{2,}@`, `(?U)a+`, `ab+?c`,
		`[^\x00-\x{10FFFF}]`, `(?i)password|[0-9]{3}`, `\d{3}(-\d{4})?`, `(?i)TOKEN\s*[:=]`,
		// Anchored attempts: the literal starts every match, or follows
		// its start within a few bytes.
		`(?i)\btoken\b`, `(?m)^token=\S+`, `\Atoken`, `token\S*\z`, `(?s).?ab`, `.{0,3}token`, `\S?secret\S*`,
		`[^ ]{0,2}\.\d`, `(?U)token\S+`, `ab|b`, `(ab)+`, `é?AKIA`, `(?i)ken`, `x{0,2}[ab]b`, `(?:a|bc)?\.1`,
		`\x{FFFD}?token`, `\Q.1\E`, `\Qab`, `(?i)(password|secret|token)\s*[:=]\s*\S+`,
		// Case-folded literals with bytes that are not letters: only the
		// letters may differ in case.
		`(?i)api_key\s*=`, `(?i)x@y`,
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

// checkScannerAgrees checks the spans one collect pass of s finds, with
// class runs shared between patterns, against whole-text scans.
func checkScannerAgrees(t testing.TB, s *Scanner, text []byte) {
	st := getState(len(s.patterns))
	defer putState(st)
	s.collect(s.byDir[Response], text, st)
	got := map[int][][2]int{}
	for _, sp := range st.spans {
		got[sp.pat] = append(got[sp.pat], [2]int{sp.start, sp.end})
	}
	for _, pi := range s.byDir[Response] {
		want := plainMatches(s.patterns[pi].re, text)
		if len(got[pi]) == 0 && len(want) == 0 {
			continue
		}
		if !reflect.DeepEqual(got[pi], want) {
			t.Fatalf("pattern %s on %q:\nscanner    %v\nwhole text %v", s.patterns[pi].name, text, got[pi], want)
		}
	}
}

func TestScannerWithSharedClassRunsFindsTheMatchesOfWholeTextScans(t *testing.T) {
	s := newScanner(t, nil, append(typicalPatterns, "Digits", `\d{2,}`, "Short SSN", `\d{3}-\d{4}`)...)
	if len(s.runSets) == 0 {
		t.Fatal("no class run is shared")
	}
	for _, text := range differentialTexts {
		checkScannerAgrees(t, s, []byte(text))
	}
	checkScannerAgrees(t, s, toolResult4KB(strings.Join(differentialTexts, " ")))
}

func TestPrefilterIsUsedForTheTypicalPatterns(t *testing.T) {
	s := newScanner(t, nil, typicalPatterns...)
	for _, p := range s.patterns {
		if !p.pf.ok {
			t.Errorf("%s: no prefilter", p.name)
		}
	}
}

func TestBroadPatternsRunAnchoredAtTheirLiteral(t *testing.T) {
	for _, tt := range []struct {
		expr   string
		before int
	}{
		{`(?i)(password|secret|token)\s*[:=]\s*\S+`, 0},
		{`xox[baprs]-[0-9A-Za-z-]{10,}`, 0},
		{`\b(?:\d{1,3}\.){3}\d{1,3}\b`, 3},
		{`\S{0,2}secret\S*`, 2 * 4},
	} {
		p, err := compilePattern("", tt.expr)
		if err != nil {
			t.Fatal(err)
		}
		if p.at == nil || p.pf.before != tt.before {
			t.Errorf("%s: anchored=%v before=%d, want anchored before=%d", tt.expr, p.at != nil, p.pf.before, tt.before)
		}
	}
	for _, expr := range []string{`[a-z]+@[a-z]+`, `\d{3}-\d{2}-\d{4}`, `\Qtoken`} {
		if p, _ := compilePattern("", expr); p.at != nil {
			t.Errorf("%s: anchored, want the window search", expr)
		}
	}
}

// foldEq agrees with the regexp's notion of case folding (the orbit of
// unicode.SimpleFold) for every pair of ASCII runes and every ASCII rune
// against the non-ASCII members of its orbit (K and U+212A, S and U+017F).
func TestFoldEqIsSimpleFold(t *testing.T) {
	orbitHas := func(want, r rune) bool {
		for f := unicode.SimpleFold(want); ; f = unicode.SimpleFold(f) {
			if f == r {
				return true
			}
			if f == want {
				return false
			}
		}
	}
	runes := []rune{'\u212a', '\u017f'}
	for r := rune(0); r < utf8.RuneSelf; r++ {
		runes = append(runes, r)
	}
	for _, r := range runes {
		for _, want := range runes {
			if got, ok := foldEq(r, want), orbitHas(want, r); got != ok {
				t.Errorf("foldEq(%q, %q) = %v, SimpleFold says %v", r, want, got, ok)
			}
		}
	}
}
