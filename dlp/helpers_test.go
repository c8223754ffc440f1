package dlp

import (
	"testing"

	"github.com/agentid/agentid/policy"
)

func ptr[T any](v T) *T { return &v }

// newScanner builds a scanner from name/regex pairs, all with scope "all".
func newScanner(t testing.TB, d *policy.DLP, pairs ...string) *Scanner {
	t.Helper()
	if d == nil {
		d = &policy.DLP{}
	}
	for i := 0; i+1 < len(pairs); i += 2 {
		d.Patterns = append(d.Patterns, policy.DLPPattern{Name: pairs[i], Regex: pairs[i+1]})
	}
	s, err := New(d)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// typicalPatterns are the ten detectors of the performance target.
var typicalPatterns = []string{
	"AWS Key", `(AKIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ASIA)[A-Z0-9]{16}`,
	"GitHub Token", `ghp_[a-zA-Z0-9]{36}`,
	"Email", `[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}`,
	"SSN", `\b\d{3}-\d{2}-\d{4}\b`,
	"Credit Card", `\b(?:\d{4}[- ]?){3}\d{4}\b`,
	"Private Key", `-----BEGIN (RSA |EC |DSA |OPENSSH )?PRIVATE KEY-----`,
	"JWT", `eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+`,
	"Generic Secret", `(?i)(password|secret|token)\s*[:=]\s*\S+`,
	"Slack Token", `xox[baprs]-[0-9A-Za-z-]{10,}`,
	"IPv4", `\b(?:\d{1,3}\.){3}\d{1,3}\b`,
}
