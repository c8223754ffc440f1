package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentid/agentid/aip"
)

// FuzzParse checks that Parse never panics and never accepts a policy the
// rest of the program cannot rely on.
func FuzzParse(f *testing.F) {
	seeds := []string{
		specDoc(""),
		benchPolicy,
		specDoc("mode: monitor\nallowed_tools: [read_file]"),
		// Hostile inputs.
		"a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n",
		header + "spec:\n  x: " + strings.Repeat("[", 200) + strings.Repeat("]", 200) + "\n",
		header + "spec:\n  " + strings.Repeat("{a: ", 50) + "1" + strings.Repeat("}", 50) + "\n",
		specDoc("server:\n  failover_mode: fail_open\n  fail_open_constraints:\n    max_requests: 1e400"),
		specDoc("server:\n  failover_mode: fail_open\n  fail_open_constraints:\n    max_requests: 99999999999999999999999999999"),
		specDoc("server:\n  failover_mode: fail_open\n  fail_open_constraints:\n    max_requests: -9223372036854775809"),
		specDoc("tool_rules:\n  - tool: a\n    allow_args:\n      1: x\n      true: y\n      ~: z\n      [a]: w"),
		specDoc("mode: .inf"),
		specDoc("identity:\n  token_ttl: 99999999999999h\n  rotation_interval: 9999999d"),
		specDoc("tool_rules:\n  - tool: a\n    allow_args:\n      x: '(?!a)'"),
		specDoc("x: !!binary aGVsbG8="),
		specDoc("<<: {mode: monitor}"),
		specDoc("allowed_tools: [2001-01-01, 0x10, 0o7, 1_000]"),
		specDoc("") + "---\n" + specDoc(""),
		"\ufeff" + specDoc(""),
		"%YAML 1.1\n---\n" + specDoc(""),
		`{"apiVersion":"aip.io/v1alpha2","kind":"AgentPolicy","metadata":{"name":"j"},"spec":{"Mode":"monitor"}}`,
		"? [a, b]\n: c\n",
		"&a a: *a\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	for _, vp := range fuzzVectorSeeds(f) {
		f.Add([]byte(vp))
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		p, warns, err := Parse(data)
		if err != nil {
			if p != nil {
				t.Fatal("policy returned with an error")
			}
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if m := p.Mode(); m != aip.ModeEnforce && m != aip.ModeMonitor {
			t.Fatalf("accepted policy with Mode() = %q", m)
		}
		if p.APIVersion != APIVersionV1Alpha1 && p.APIVersion != APIVersionV1Alpha2 {
			t.Fatalf("accepted apiVersion %q", p.APIVersion)
		}
		if p.Kind != KindAgentPolicy || strings.TrimSpace(p.Metadata.Name) == "" {
			t.Fatalf("accepted kind %q name %q", p.Kind, p.Metadata.Name)
		}
		for _, r := range p.Spec.ToolRules {
			switch r.EffectiveAction() {
			case ActionAllow, ActionBlock, ActionAsk:
			default:
				t.Fatalf("accepted action %q", r.Action)
			}
		}
		id := p.IdentityConfig()
		if id.TokenTTL <= 0 || id.RotationInterval < 0 || id.RotationInterval >= id.TokenTTL || id.NonceWindow < id.TokenTTL {
			t.Fatalf("accepted identity timing %+v", id)
		}
		sc := p.ServerConfig()
		if !sc.Loopback() && !sc.TLS.Enabled() {
			t.Fatalf("accepted non-loopback listener %q without TLS", sc.Listen)
		}
		_ = warns
		// Reparsing the accepted bytes gives the same verdict.
		if _, _, err := Parse(p.Raw); err != nil {
			t.Fatalf("reparse failed: %v", err)
		}
	})
}

// fuzzVectorSeeds returns the conformance vector policies, when the shared
// spec directory is present.
func fuzzVectorSeeds(f *testing.F) []string {
	var out []string
	files, _ := filepath.Glob(filepath.Join(conformanceDir, "*", "*.yaml"))
	for _, file := range files {
		if _, err := os.Stat(file); err != nil {
			continue
		}
		for _, vp := range vectorPolicies(f, file) {
			out = append(out, vp.doc)
		}
	}
	return out
}
