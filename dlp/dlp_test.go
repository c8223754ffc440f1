package dlp

import (
	"reflect"
	"strings"
	"testing"

	"github.com/agentid/agentid/policy"
)

func TestNewAppliesSpecDefaults(t *testing.T) {
	s := newScanner(t, nil, "A", "a")
	if !s.Enabled() || s.ScansRequests() || !s.ScansResponses() || s.FiltersStderr() || s.LogOriginalOnFailure() {
		t.Errorf("defaults: enabled=%v requests=%v responses=%v", s.Enabled(), s.ScansRequests(), s.ScansResponses())
	}
	if s.MaxScanSize() != 1<<20 || s.onRequestMatch != policy.OnMatchBlock || s.onFailure != policy.OnFailureBlock {
		t.Errorf("defaults: max=%d on_request_match=%q on_redaction_failure=%q", s.MaxScanSize(), s.onRequestMatch, s.onFailure)
	}
}

func TestDisabledScannerIsNoOp(t *testing.T) {
	var nilScanner *Scanner
	nilBlock, _ := New(nil)
	off := newScanner(t, &policy.DLP{Enabled: ptr(false)}, "Email", `\S+@\S+`)
	for name, s := range map[string]*Scanner{"nil scanner": nilScanner, "nil block": nilBlock, "enabled false": off} {
		if s.Enabled() || s.ScansRequests() || s.ScansResponses() {
			t.Errorf("%s: reports enabled", name)
		}
		if got, f := s.RedactString(Response, "a@b.c"); got != "a@b.c" || f != nil {
			t.Errorf("%s: RedactString = %q, %v", name, got, f)
		}
		raw := []byte(`{"x":"a@b.c"}`)
		if res, err := s.RedactJSON(Response, raw); err != nil || res.Changed || &res.Data[0] != &raw[0] {
			t.Errorf("%s: RedactJSON changed=%v err=%v", name, res.Changed, err)
		}
		if out := s.ScanRequest(raw, nil); out.Action != Forward || out.Event != "" {
			t.Errorf("%s: ScanRequest = %+v", name, out)
		}
	}
}

func TestNewRejectsInvalidConfiguration(t *testing.T) {
	for name, d := range map[string]*policy.DLP{
		"bad regex":            {Patterns: []policy.DLPPattern{{Name: "x", Regex: "("}}},
		"empty regex":          {Patterns: []policy.DLPPattern{{Name: "x"}}},
		"missing name":         {Patterns: []policy.DLPPattern{{Regex: "x"}}},
		"bad scope":            {Patterns: []policy.DLPPattern{{Name: "x", Regex: "x", Scope: "both"}}},
		"bad on_request_match": {OnRequestMatch: "drop"},
		"bad failure action":   {OnRedactionFailure: "ignore"},
		"bad max_scan_size":    {MaxScanSize: "lots"},
		"disabled, bad regex":  {Enabled: ptr(false), Patterns: []policy.DLPPattern{{Name: "x", Regex: "["}}},
	} {
		if _, err := New(d); err == nil || !strings.HasPrefix(err.Error(), "dlp: ") {
			t.Errorf("%s: err = %v, want a dlp: error", name, err)
		}
	}
}

func TestRedactStringRules(t *testing.T) {
	tests := []struct {
		name     string
		patterns []string
		in, want string
		findings []Finding
	}{
		{"marker is exactly [REDACTED:name]", []string{"Secret Pattern", `SECRET_[A-Z]+`},
			"Value: SECRET_ABC", "Value: [REDACTED:Secret Pattern]", []Finding{{"Secret Pattern", 1}}},
		{"every match is replaced", []string{"Email", `[a-z]+@[a-z]+\.[a-z]{2,}`},
			"a@b.com, c@d.org", "[REDACTED:Email], [REDACTED:Email]", []Finding{{"Email", 2}}},
		{"dollar in a name is not expanded", []string{"$1 ${x}", `key-[0-9]+`},
			"key-42", "[REDACTED:$1 ${x}]", []Finding{{"$1 ${x}", 1}}},
		{"overlapping matches merge and the earlier pattern names them", []string{"First", `BBBB[0-9]+`, "Second", `AAAABBBB`},
			"xAAAABBBB1234y", "x[REDACTED:First]y", []Finding{{"First", 1}, {"Second", 1}}},
		{"earlier pattern wins a merged span whatever the positions", []string{"Tail", `CCC`, "Head", `ABCC`},
			"ABCCC!", "[REDACTED:Tail]!", []Finding{{"Tail", 1}, {"Head", 1}}},
		{"adjacent matches merge into one marker", []string{"Digits", `[0-9]{3}`, "Letters", `[a-z]{3}`},
			"123abc 456", "[REDACTED:Digits] [REDACTED:Digits]", []Finding{{"Digits", 2}, {"Letters", 1}}},
		{"a later pattern never sees an earlier marker", []string{"Token", `tok_[a-z]+`, "Redacted word", `REDACTED`},
			"tok_abc", "[REDACTED:Token]", []Finding{{"Token", 1}}},
		{"findings follow policy order", []string{"B", `b+`, "A", `a+`},
			"aaa bbb", "[REDACTED:A] [REDACTED:B]", []Finding{{"B", 1}, {"A", 1}}},
		{"empty matches are ignored", []string{"Stars", `x*`},
			"abc", "abc", nil},
		{"no match returns the input", []string{"AWS Key", `AKIA[0-9A-Z]{16}`},
			"nothing here", "nothing here", nil},
		{"case-folded literal honours Kelvin sign", []string{"Secret", `(?i)token\s*[:=]\s*\S+`},
			"to\u212Aen: abc", "[REDACTED:Secret]", []Finding{{"Secret", 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newScanner(t, nil, tt.patterns...)
			got, f := s.RedactString(Response, tt.in)
			if got != tt.want || !reflect.DeepEqual(f, tt.findings) {
				t.Errorf("RedactString(%q) = %q, %v; want %q, %v", tt.in, got, f, tt.want, tt.findings)
			}
		})
	}
}

func TestScopeSelectsDirection(t *testing.T) {
	s, err := New(&policy.DLP{Patterns: []policy.DLPPattern{
		{Name: "Req", Regex: `REQ`, Scope: policy.ScopeRequest},
		{Name: "Resp", Regex: `RESP`, Scope: policy.ScopeResponse},
		{Name: "Both", Regex: `BOTH`, Scope: policy.ScopeAll},
		{Name: "Default", Regex: `DEF`},
	}})
	if err != nil {
		t.Fatal(err)
	}
	const in = "REQ RESP BOTH DEF"
	if got, _ := s.RedactString(Request, in); got != "[REDACTED:Req] RESP [REDACTED:Both] [REDACTED:Default]" {
		t.Errorf("request: %q", got)
	}
	if got, _ := s.RedactString(Response, in); got != "REQ [REDACTED:Resp] [REDACTED:Both] [REDACTED:Default]" {
		t.Errorf("response: %q", got)
	}
}

func TestMaxScanSizeLimitsRedactString(t *testing.T) {
	s := newScanner(t, &policy.DLP{MaxScanSize: "1KB"}, "Key", `KEY[0-9]`)
	in := "KEY1" + strings.Repeat(".", 2000) + "KEY2"
	got, f := s.RedactString(Response, in)
	if !strings.HasPrefix(got, "[REDACTED:Key]") || !strings.HasSuffix(got, "KEY2") || f[0].Count != 1 {
		t.Errorf("got %q…, %v", got[:20], f)
	}
}

func TestDetectEncodingRedactsEncodedSecrets(t *testing.T) {
	s := newScanner(t, &policy.DLP{DetectEncoding: ptr(true)}, "AWS Key", `AKIA[0-9A-Z]{16}`, "SSN", `\b\d{3}-\d{2}-\d{4}\b`)
	tests := []struct{ name, in, want string }{
		{"base64", "blob QUtJQUlPU0ZPRE5ON0VYQU1QTEU= end", "blob [REDACTED:AWS Key] end"},
		{"base64 url-safe without padding", "x QUtJQUlPU0ZPRE5ON0VYQU1QTEU y", "x [REDACTED:AWS Key] y"},
		{"base64 glued to a prefix", "keyQUtJQUlPU0ZPRE5ON0VYQU1QTEU=", "[REDACTED:AWS Key]"},
		{"hex", "h=414b4941494f53464f444e4e374558414d504c45;", "h=[REDACTED:AWS Key];"},
		{"short encoded SSN", "MTIzLTQ1LTY3ODk=", "[REDACTED:SSN]"},
		{"plain text stays", "just some words here, nothing else", "just some words here, nothing else"},
	}
	for _, tt := range tests {
		if got, _ := s.RedactString(Response, tt.in); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
	off := newScanner(t, nil, "AWS Key", `AKIA[0-9A-Z]{16}`)
	if got, _ := off.RedactString(Response, "QUtJQUlPU0ZPRE5ON0VYQU1QTEU="); got != "QUtJQUlPU0ZPRE5ON0VYQU1QTEU=" {
		t.Errorf("detect_encoding off: %q", got)
	}
}
