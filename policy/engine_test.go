package policy

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/testenv"

	"github.com/agentid/agentid/aip"
	"github.com/agentid/agentid/store/memory"
	"sigs.k8s.io/yaml"
)

// mustPolicyYAML parses an AgentPolicy document for a test. A document that
// does not start with "apiVersion" is taken as the body of spec.
func mustPolicyYAML(t testing.TB, doc string) *Policy {
	t.Helper()
	if !strings.HasPrefix(strings.TrimSpace(doc), "apiVersion") {
		var b strings.Builder
		b.WriteString("apiVersion: aip.io/v1alpha2\nkind: AgentPolicy\nmetadata:\n  name: test\nspec:\n")
		for _, line := range strings.Split(doc, "\n") {
			b.WriteString("  " + line + "\n")
		}
		doc = b.String()
	}
	var p Policy
	if err := yaml.Unmarshal([]byte(doc), &p); err != nil {
		t.Fatalf("policy YAML: %v\n%s", err, doc)
	}
	return &p
}

// testDirs returns a private home directory and a working directory inside it.
func testDirs(t testing.TB) (home, work string) {
	t.Helper()
	home = t.TempDir()
	work = filepath.Join(home, "work")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	return home, work
}

func mustEngine(t testing.TB, p *Policy) *Engine {
	t.Helper()
	home, work := testDirs(t)
	e, err := NewEngine(p, EngineOptions{Paths: HostPaths(), HomeDir: home, WorkDir: work})
	if err != nil {
		t.Fatalf("NewEngine: %v", err)
	}
	return e
}

var testNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

type toolCase struct {
	name      string // the requirement
	policy    string
	tool      string
	args      string
	schema    string
	want      Action
	code      int
	violation string
	reason    string
	failedArg string
	monitored bool
}

func runToolCases(t *testing.T, cases []toolCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := mustEngine(t, mustPolicyYAML(t, tc.policy))
			var args json.RawMessage
			if tc.args != "" {
				args = json.RawMessage(tc.args)
			}
			d := e.DecideTool(ToolCall{Name: tc.tool, Arguments: args, SchemaHash: tc.schema})
			checkDecision(t, d, tc)
		})
	}
}

func checkDecision(t *testing.T, d Decision, tc toolCase) {
	t.Helper()
	if d.Action != tc.want || d.Code != tc.code || d.ViolationType != tc.violation || d.Monitored != tc.monitored {
		t.Errorf("got %v code=%d violation=%q monitored=%v (reason %q, arg %q, rule %q); want %v code=%d violation=%q monitored=%v",
			d.Action, d.Code, d.ViolationType, d.Monitored, d.Reason, d.FailedArg, d.FailedRule, tc.want, tc.code, tc.violation, tc.monitored)
	}
	if tc.reason != "" && d.Reason != tc.reason {
		t.Errorf("reason = %q, want %q", d.Reason, tc.reason)
	}
	if tc.failedArg != "" && d.FailedArg != tc.failedArg {
		t.Errorf("failed arg = %q, want %q", d.FailedArg, tc.failedArg)
	}
}

func TestDecideToolAuthorization(t *testing.T) {
	runToolCases(t, []toolCase{
		{name: "a tool in allowed_tools is allowed",
			policy: "allowed_tools: [read_file]", tool: "read_file", args: `{"path":"/tmp/x"}`, want: Allow},
		{name: "a tool not in allowed_tools is blocked with the conformance reason",
			policy: "allowed_tools: [read_file]", tool: "delete_file", want: Block, code: -32001,
			violation: aip.ViolationToolNotAllowed, reason: "Tool not in allowed_tools list"},
		{name: "an empty allowlist blocks every tool",
			policy: "allowed_tools: []", tool: "any_tool", want: Block, code: -32001, violation: aip.ViolationToolNotAllowed},
		{name: "a block rule blocks a tool that allowed_tools allows",
			policy: "allowed_tools: [rm]\ntool_rules:\n- tool: rm\n  action: block", tool: "rm",
			want: Block, code: -32001, violation: aip.ViolationRuleBlock},
		{name: "an allow rule puts its tool on the allowlist",
			policy: "tool_rules:\n- tool: special\n  action: allow", tool: "special", want: Allow},
		{name: "a rule without action allows",
			policy: "tool_rules:\n- tool: special", tool: "special", want: Allow},
		{name: "a block rule does not put its tool on the allowlist",
			policy: "tool_rules:\n- tool: rm\n  action: block", tool: "rm", want: Block, code: -32001, violation: aip.ViolationRuleBlock},
		{name: "an ask rule asks even when the tool is not in allowed_tools",
			policy: "tool_rules:\n- tool: deploy\n  action: ask", tool: "deploy", args: `{"env":"prod"}`, want: Ask},
		{name: "an ask rule asks when its allow_args match",
			policy: "tool_rules:\n- tool: deploy\n  action: ask\n  allow_args:\n    env: ^(staging|prod)$", tool: "deploy", args: `{"env":"prod"}`, want: Ask},
		{name: "an ask rule blocks when its allow_args fail",
			policy: "tool_rules:\n- tool: deploy\n  action: ask\n  allow_args:\n    env: ^staging$", tool: "deploy", args: `{"env":"prod"}`,
			want: Block, code: -32001, violation: aip.ViolationArgumentValidation, failedArg: "env"},
		{name: "policy-side names are normalized",
			policy: "allowed_tools: [\"ＲＥＡＤ_File \"]", tool: "read_file", want: Allow},
		{name: "request names are normalized",
			policy: "allowed_tools: [read_file]", tool: "ＲＥＡＤ＿ＦＩＬＥ", want: Allow},
		{name: "a leading zero-width space followed by a space is normalized away",
			policy: "allowed_tools: [read_file]", tool: "\u200b read_file", want: Allow},
		{name: "a zero-width character cannot hide a blocked tool from its block rule",
			policy: "allowed_tools: [exec]\ntool_rules:\n- tool: exec\n  action: block", tool: "ex\u200cec", want: Block, code: -32001, violation: aip.ViolationRuleBlock},
		{name: "Cyrillic homoglyphs are not folded and stay blocked",
			policy: "allowed_tools: [delete_file]", tool: "dеlеtе_filе", want: Block, code: -32001, violation: aip.ViolationToolNotAllowed},
		{name: "an invisible character between a letter and its combining mark does not stop composition",
			policy: "allowed_tools: [café]", tool: "cafe\u200b\u0301", want: Allow},
		{name: "a name that normalizes to nothing is blocked",
			policy: "allowed_tools: [read_file]", tool: "\u200b\ufeff", want: Block, code: -32001, violation: aip.ViolationToolNotAllowed},
	})
}

func TestDecideToolArguments(t *testing.T) {
	const fetch = "tool_rules:\n- tool: fetch\n  allow_args:\n    url: "
	runToolCases(t, []toolCase{
		{name: "a matching argument is allowed",
			policy: fetch + `'^https://github\.com/'`, tool: "fetch", args: `{"url":"https://github.com/a"}`, want: Allow},
		{name: "a non-matching argument is blocked without revealing the pattern",
			policy: fetch + `'^https://github\.com/'`, tool: "fetch", args: `{"url":"https://evil.com/"}`,
			want: Block, code: -32001, violation: aip.ViolationArgumentValidation, reason: "Argument validation failed", failedArg: "url"},
		{name: "a missing constrained argument is a violation",
			policy: fetch + `'.*'`, tool: "fetch", args: `{}`,
			want: Block, code: -32001, violation: aip.ViolationArgumentValidation, reason: "Required argument missing", failedArg: "url"},
		{name: "absent arguments are a missing constrained argument",
			policy: fetch + `'.*'`, tool: "fetch",
			want: Block, code: -32001, violation: aip.ViolationArgumentValidation, failedArg: "url"},
		{name: "patterns match partially, as RE2 MatchString does",
			policy: fetch + `'github'`, tool: "fetch", args: `{"url":"https://github.com/a"}`, want: Allow},
		{name: "an anchored pattern rejects trailing text",
			policy: fetch + `'^https://github\.com$'`, tool: "fetch", args: `{"url":"https://github.com.evil"}`,
			want: Block, code: -32001, violation: aip.ViolationArgumentValidation},
		{name: "a lazy quantifier over a group is accepted and matches",
			policy: "tool_rules:\n- tool: t\n  allow_args:\n    s: '^(ab)+?$'", tool: "t", args: `{"s":"ababab"}`, want: Allow},
		{name: "every constrained argument must match",
			policy: "tool_rules:\n- tool: t\n  allow_args:\n    a: ^x$\n    b: ^y$", tool: "t", args: `{"a":"x","b":"z"}`,
			want: Block, code: -32001, violation: aip.ViolationArgumentValidation, failedArg: "b"},
		{name: "the first failing argument in sorted order is reported",
			policy: "tool_rules:\n- tool: t\n  allow_args:\n    zeta: ^x$\n    alpha: ^x$\n    mid: ^x$", tool: "t", args: `{"zeta":"n","mid":"n","alpha":"n"}`,
			want: Block, code: -32001, violation: aip.ViolationArgumentValidation, failedArg: "alpha"},
		{name: "escaped strings are decoded before matching",
			policy: fetch + `'^https://github\.com/'`, tool: "fetch", args: `{"url":"\u0068ttps://github.com/a"}`, want: Allow},
		{name: "escaped keys are decoded before lookup",
			policy: fetch + `'^https://'`, tool: "fetch", args: `{"\u0075rl":"https://x"}`, want: Allow},
		{name: "numbers are matched in decimal",
			policy: "tool_rules:\n- tool: t\n  allow_args:\n    port: '^[0-9]+$'", tool: "t", args: `{"port":8080}`, want: Allow},
		{name: "large integers keep every digit",
			policy: "tool_rules:\n- tool: t\n  allow_args:\n    num: '^18446744073709551617$'", tool: "t", args: `{"num":18446744073709551617}`, want: Allow},
		{name: "a float with a zero fraction is matched as an integer",
			policy: "tool_rules:\n- tool: t\n  allow_args:\n    num: '^1$'", tool: "t", args: `{"num":1.0}`, want: Allow},
		{name: "booleans are matched as true/false",
			policy: "tool_rules:\n- tool: t\n  allow_args:\n    b: '^(true|false)$'", tool: "t", args: `{"b":true}`, want: Allow},
		{name: "null is matched as the empty string",
			policy: "tool_rules:\n- tool: t\n  allow_args:\n    num: '^$'", tool: "t", args: `{"num":null}`, want: Allow},
		{name: "arrays are matched as JSON",
			policy: "tool_rules:\n- tool: t\n  allow_args:\n    tags: '^\\[.*\\]$'", tool: "t", args: `{"tags":["a", "b"]}`, want: Allow},
		{name: "objects are matched in JCS form without HTML escaping",
			policy: "tool_rules:\n- tool: t\n  allow_args:\n    o: '^\\{\"a\":\"<b>\",\"z\":1\\}$'", tool: "t", args: `{"o":{"z":1.0, "a":"<b>"}}`, want: Allow},
		{name: "arguments that are not an object are blocked",
			policy: "allowed_tools: [t]", tool: "t", args: `["a"]`, want: Block, code: -32001, violation: aip.ViolationArgumentValidation, reason: "Invalid arguments"},
		{name: "invalid JSON arguments are blocked",
			policy: "allowed_tools: [t]", tool: "t", args: `{"a":`, want: Block, code: -32001, violation: aip.ViolationArgumentValidation},
		{name: "duplicate argument keys are blocked",
			policy: "allowed_tools: [t]", tool: "t", args: `{"a":1,"\u0061":2}`, want: Block, code: -32001, violation: aip.ViolationArgumentValidation},
		{name: "null arguments are no arguments",
			policy: "allowed_tools: [t]", tool: "t", args: `null`, want: Allow},
		{name: "undeclared arguments are allowed without strict args",
			policy: fetch + `'^https://'` + "\n  strict_args: false", tool: "fetch", args: `{"url":"https://x","headers":{"a":"b"}}`, want: Allow},
	})
}

func TestDecideToolStrictArgs(t *testing.T) {
	runToolCases(t, []toolCase{
		{name: "strict args reject an undeclared argument",
			policy: "tool_rules:\n- tool: t\n  strict_args: true\n  allow_args:\n    url: ^https://", tool: "t", args: `{"url":"https://x","headers":{}}`,
			want: Block, code: -32001, violation: aip.ViolationStrictArgs, failedArg: "headers"},
		{name: "strict args without allow_args reject any argument",
			policy: "tool_rules:\n- tool: t\n  strict_args: true", tool: "t", args: `{"x":1}`,
			want: Block, code: -32001, violation: aip.ViolationStrictArgs, failedArg: "x"},
		{name: "strict args without allow_args allow a call without arguments",
			policy: "tool_rules:\n- tool: t\n  strict_args: true", tool: "t", args: `{}`, want: Allow},
		{name: "strict_args_default applies to rules without strict_args",
			policy: "strict_args_default: true\ntool_rules:\n- tool: t\n  allow_args:\n    a: .", tool: "t", args: `{"a":"x","extra":"y"}`,
			want: Block, code: -32001, violation: aip.ViolationStrictArgs, failedArg: "extra"},
		{name: "strict_args_default applies to tools allowed only by allowed_tools",
			policy: "strict_args_default: true\nallowed_tools: [t]", tool: "t", args: `{"a":"x"}`,
			want: Block, code: -32001, violation: aip.ViolationStrictArgs, failedArg: "a"},
		{name: "a rule's strict_args false overrides strict_args_default",
			policy: "strict_args_default: true\ntool_rules:\n- tool: t\n  strict_args: false\n  allow_args:\n    a: .", tool: "t", args: `{"a":"x","extra":"y"}`, want: Allow},
		{name: "the first undeclared argument in sorted order is reported",
			policy: "tool_rules:\n- tool: t\n  strict_args: true\n  allow_args:\n    m: .", tool: "t", args: `{"zz":1,"m":"x","bb":2,"aa":3}`,
			want: Block, code: -32001, violation: aip.ViolationStrictArgs, failedArg: "aa"},
	})
}

func TestDecideToolMonitorMode(t *testing.T) {
	runToolCases(t, []toolCase{
		{name: "monitor mode lets a tool outside the allowlist through, marked",
			policy: "mode: monitor\nallowed_tools: [safe]", tool: "other",
			want: Allow, code: -32001, violation: aip.ViolationToolNotAllowed, monitored: true},
		{name: "monitor mode lets a block rule through, marked",
			policy: "mode: monitor\ntool_rules:\n- tool: rm\n  action: block", tool: "rm",
			want: Allow, code: -32001, violation: aip.ViolationRuleBlock, monitored: true},
		{name: "monitor mode lets an argument violation through, marked",
			policy: "mode: monitor\ntool_rules:\n- tool: t\n  allow_args:\n    a: ^x$", tool: "t", args: `{"a":"y"}`,
			want: Allow, code: -32001, violation: aip.ViolationArgumentValidation, monitored: true, failedArg: "a"},
		{name: "monitor mode lets a strict args violation through, marked",
			policy: "mode: monitor\ntool_rules:\n- tool: t\n  strict_args: true", tool: "t", args: `{"a":"y"}`,
			want: Allow, code: -32001, violation: aip.ViolationStrictArgs, monitored: true},
		{name: "monitor mode still asks",
			policy: "mode: monitor\ntool_rules:\n- tool: t\n  action: ask", tool: "t", want: Ask},
		{name: "monitor mode still enforces protected paths",
			policy: "mode: monitor\nallowed_tools: [t]\nprotected_paths: [/etc/shadow]", tool: "t", args: `{"p":"/etc/shadow"}`,
			want: Block, code: -32007, violation: aip.ViolationProtectedPath},
		{name: "monitor mode still blocks invalid arguments",
			policy: "mode: monitor\nallowed_tools: [t]", tool: "t", args: `[1]`,
			want: Block, code: -32001, violation: aip.ViolationArgumentValidation},
		{name: "monitor mode still enforces schema mismatches",
			policy: "mode: monitor\ntool_rules:\n- tool: t\n  schema_hash: sha256:" + strings.Repeat("ab", 32), tool: "t", schema: "sha256:" + strings.Repeat("cd", 32),
			want: Block, code: -32013, violation: aip.ViolationSchemaMismatch},
		{name: "monitor mode lets an unknown schema through, marked",
			policy: "mode: monitor\ntool_rules:\n- tool: t\n  schema_hash: sha256:" + strings.Repeat("ab", 32), tool: "t",
			want: Allow, code: -32001, violation: aip.ViolationSchemaMismatch, monitored: true},
		{name: "enforce is the default mode",
			policy: "allowed_tools: [safe]", tool: "other", want: Block, code: -32001, violation: aip.ViolationToolNotAllowed},
	})
}

func TestDecideToolSchemaHash(t *testing.T) {
	pin := "sha256:" + strings.Repeat("ab", 32)
	rule := "tool_rules:\n- tool: t\n  schema_hash: " + pin
	runToolCases(t, []toolCase{
		{name: "a matching schema hash allows", policy: rule, tool: "t", schema: pin, want: Allow},
		{name: "schema hashes compare case-insensitively", policy: "tool_rules:\n- tool: t\n  schema_hash: SHA256:" + strings.Repeat("AB", 32), tool: "t", schema: pin, want: Allow},
		{name: "a mismatched schema hash blocks with -32013",
			policy: rule, tool: "t", schema: "sha256:" + strings.Repeat("cd", 32), want: Block, code: -32013, violation: aip.ViolationSchemaMismatch, reason: "Tool schema mismatch"},
		{name: "an unknown schema blocks with -32001",
			policy: rule, tool: "t", want: Block, code: -32001, violation: aip.ViolationSchemaMismatch, reason: "Tool schema unknown"},
		{name: "an ask rule with a mismatched schema blocks before asking",
			policy: rule + "\n  action: ask", tool: "t", schema: "sha256:" + strings.Repeat("cd", 32), want: Block, code: -32013, violation: aip.ViolationSchemaMismatch},
		{name: "a block rule blocks before the schema is considered",
			policy: rule + "\n  action: block", tool: "t", want: Block, code: -32001, violation: aip.ViolationRuleBlock},
		{name: "a schema match still validates arguments",
			policy: rule + "\n  allow_args:\n    a: ^x$", tool: "t", schema: pin, args: `{"a":"y"}`, want: Block, code: -32001, violation: aip.ViolationArgumentValidation},
	})
}

func TestDecideToolOrder(t *testing.T) {
	// One policy in which a single call violates several steps: the earliest
	// step of AIP §4.3 decides.
	runToolCases(t, []toolCase{
		{name: "protected paths are checked before block rules",
			policy: "protected_paths: [/etc/shadow]\ntool_rules:\n- tool: t\n  action: block", tool: "t", args: `{"p":"/etc/shadow"}`,
			want: Block, code: -32007, violation: aip.ViolationProtectedPath, failedArg: "p"},
		{name: "protected paths are checked for tools outside the allowlist",
			policy: "protected_paths: [/etc/shadow]", tool: "unknown", args: `{"p":"/etc/shadow"}`,
			want: Block, code: -32007, violation: aip.ViolationProtectedPath},
		{name: "the allowlist is checked before arguments",
			policy: "strict_args_default: true", tool: "t", args: `{"a":1}`, want: Block, code: -32001, violation: aip.ViolationToolNotAllowed},
		{name: "allow_args are checked before strict args",
			policy: "tool_rules:\n- tool: t\n  strict_args: true\n  allow_args:\n    a: ^x$", tool: "t", args: `{"a":"y","b":1}`,
			want: Block, code: -32001, violation: aip.ViolationArgumentValidation, failedArg: "a"},
	})
}

func TestRateLimitIsTheRulesLimitByNormalizedName(t *testing.T) {
	e := mustEngine(t, mustPolicyYAML(t, "tool_rules:\n- tool: t\n  rate_limit: 2/minute\n- tool: u"))
	if rl, rule, ok := e.RateLimit("\u200bT "); !ok || rl.Count != 2 || rl.Per != time.Minute || rule != "tool_rules[0]" {
		t.Fatalf("RateLimit = %+v, %q, %v", rl, rule, ok)
	}
	if _, _, ok := e.RateLimit("u"); ok {
		t.Fatal("a rule without rate_limit has one")
	}
	d := e.RateLimited("T", "tool_rules[0]")
	if d.Action != Block || d.Code != -32002 || d.ViolationType != aip.ViolationRateLimited || d.Reason != "Rate limit exceeded" ||
		d.AuditDecision() != aip.AuditRateLimited || d.Tool != "t" {
		t.Fatalf("RateLimited = %+v", d)
	}
}

func TestDecideToolFailedArgIsDeterministic(t *testing.T) {
	e := mustEngine(t, mustPolicyYAML(t, "tool_rules:\n- tool: t\n  strict_args: true"))
	args := json.RawMessage(`{"k9":1,"k3":1,"k7":1,"k1":1,"k5":1,"k2":1}`)
	for range 100 {
		if d := e.DecideTool(ToolCall{Name: "t", Arguments: args}); d.FailedArg != "k1" {
			t.Fatalf("failed arg %q, want k1", d.FailedArg)
		}
	}
}

func TestDecideMethod(t *testing.T) {
	for _, tc := range []struct {
		name, policy, method string
		want                 Action
		monitored            bool
	}{
		{"tools/call is allowed by default", "allowed_tools: []", "tools/call", Allow, false},
		{"initialize is allowed by default", "allowed_tools: []", "initialize", Allow, false},
		{"the spec's bare cancelled is allowed by default", "allowed_tools: []", "cancelled", Allow, false},
		{"notifications/cancelled is allowed by default (deviation)", "allowed_tools: []", "notifications/cancelled", Allow, false},
		{"notifications/roots/list_changed is allowed by default (deviation)", "allowed_tools: []", "notifications/roots/list_changed", Allow, false},
		{"resources/read is blocked by default", "allowed_tools: []", "resources/read", Block, false},
		{"prompts/get is blocked by default", "allowed_tools: []", "prompts/get", Block, false},
		{"an explicit allowed_methods replaces the default list", "allowed_methods: [tools/call]", "tools/list", Block, false},
		{"a method in allowed_methods is allowed", "allowed_methods: [resources/read]", "resources/read", Allow, false},
		{"the wildcard allows any method", "allowed_methods: ['*']", "any/method", Allow, false},
		{"denied_methods beat the wildcard", "allowed_methods: ['*']\ndenied_methods: [logging/setLevel]", "logging/setLevel", Block, false},
		{"denied_methods beat the default list", "denied_methods: [ping]", "ping", Block, false},
		{"methods compare case-insensitively", "allowed_tools: []", "TOOLS/CALL", Allow, false},
		{"policy method names are normalized", "allowed_methods: [Resources/Read]", "resources/read", Allow, false},
		{"denied methods are normalized on both sides", "allowed_methods: ['*']\ndenied_methods: [\"Ｄangerous/method\"]", "dangerous/METHOD\u200b", Block, false},
		{"monitor mode lets a denied method through, marked", "mode: monitor\ndenied_methods: [x]", "x", Allow, true},
		{"monitor mode lets an unlisted method through, marked", "mode: monitor", "resources/read", Allow, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := mustEngine(t, mustPolicyYAML(t, tc.policy))
			d := e.DecideMethod(tc.method)
			if d.Action != tc.want || d.Monitored != tc.monitored {
				t.Fatalf("%+v, want %v monitored=%v", d, tc.want, tc.monitored)
			}
			if d.Method != NormalizeName(tc.method) {
				t.Errorf("method %q, want the normalized name", d.Method)
			}
			if violated := tc.want == Block || tc.monitored; violated != (d.Code == -32006 && d.ViolationType == aip.ViolationMethodNotAllowed && d.Reason == "Method not allowed") {
				t.Errorf("violation fields: %+v", d)
			}
		})
	}
}

func TestNilPolicyBlocksEveryTool(t *testing.T) {
	e, err := NewEngine(nil, EngineOptions{HomeDir: t.TempDir(), WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if e.Policy() != nil {
		t.Error("Policy() is not nil")
	}
	d := e.DecideTool(ToolCall{Name: "any_tool", Arguments: json.RawMessage(`{}`)})
	if d.Action != Block || d.Code != -32001 || d.Reason != "Tool not in allowed_tools list" {
		t.Errorf("DecideTool: %+v", d)
	}
	if d := e.DecideMethod("initialize"); d.Action != Allow {
		t.Errorf("initialize: %+v", d)
	}
	if e.ToolVisible("any_tool", "") {
		t.Error("a tool is visible without a policy")
	}
}

func TestNewEngineRejects(t *testing.T) {
	for _, tc := range []struct{ name, policy, want string }{
		{"an unknown mode", "mode: audit", "spec.mode"},
		{"an unknown action", "tool_rules:\n- tool: t\n  action: deny", "spec.tool_rules[0].action"},
		{"an invalid RE2 pattern", "tool_rules:\n- tool: t\n  allow_args:\n    a: '(?!x)'", "allow_args"},
		{"an invalid rate limit", "tool_rules:\n- tool: t\n  rate_limit: 10/fortnight", "spec.tool_rules[0].rate_limit"},
		{"an invalid schema hash", "tool_rules:\n- tool: t\n  schema_hash: md5:abcd", "spec.tool_rules[0].schema_hash"},
		{"a short schema digest", "tool_rules:\n- tool: t\n  schema_hash: sha256:abcd", "schema_hash"},
		{"two rules for one normalized tool", "tool_rules:\n- tool: read_file\n- tool: READ_FILE", "spec.tool_rules[1].tool"},
		{"a tool name that normalizes to nothing", "allowed_tools: [\"\u200b\"]", "spec.allowed_tools[0]"},
		{"a rule tool that normalizes to nothing", "tool_rules:\n- tool: \" \"", "spec.tool_rules[0].tool"},
		{"a protected path naming no file", "protected_paths: ['.']", "protected_paths"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home, work := testDirs(t)
			_, err := NewEngine(mustPolicyYAML(t, tc.policy), EngineOptions{Paths: HostPaths(), HomeDir: home, WorkDir: work})
			if err == nil || !strings.HasPrefix(err.Error(), "policy: ") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want a policy: error mentioning %q", err, tc.want)
			}
		})
	}
}

func TestToolVisible(t *testing.T) {
	pin := "sha256:" + strings.Repeat("ab", 32)
	other := "sha256:" + strings.Repeat("cd", 32)
	const base = "allowed_tools: [listed]\ntool_rules:\n- tool: blocked\n  action: block\n- tool: asked\n  action: ask\n- tool: ruled\n- tool: pinned\n  schema_hash: "
	for _, tc := range []struct {
		name, mode, tool, hash string
		want                   bool
	}{
		{"an allowlisted tool is visible", "", "listed", "", true},
		{"an allow rule's tool is visible", "", "Ruled", "", true},
		{"an ask rule's tool is visible", "", "asked", "", true},
		{"an unlisted tool is hidden", "", "other", "", false},
		{"a block rule's tool is hidden", "", "blocked", "", false},
		{"a pinned tool with a matching hash is visible", "", "pinned", pin, true},
		{"a pinned tool with another hash is hidden", "", "pinned", other, false},
		{"a pinned tool without a hash is hidden", "", "pinned", "", false},
		{"monitor mode shows an unlisted tool", "monitor", "other", "", true},
		{"monitor mode shows a block rule's tool", "monitor", "blocked", "", true},
		{"monitor mode hides a pinned tool with another hash", "monitor", "pinned", other, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := base + pin
			if tc.mode != "" {
				doc = "mode: " + tc.mode + "\n" + doc
			}
			e := mustEngine(t, mustPolicyYAML(t, doc))
			if got := e.ToolVisible(tc.tool, tc.hash); got != tc.want {
				t.Fatalf("ToolVisible(%q, %q) = %v, want %v", tc.tool, tc.hash, got, tc.want)
			}
		})
	}
}

func TestSchemaHashAlg(t *testing.T) {
	e := mustEngine(t, mustPolicyYAML(t, "tool_rules:\n- tool: a\n  schema_hash: SHA384:"+strings.Repeat("0", 96)+"\n- tool: b"))
	for tool, want := range map[string]string{"a": "sha384", "A ": "sha384", "b": "", "c": ""} {
		if got := e.SchemaHashAlg(tool); got != want {
			t.Errorf("SchemaHashAlg(%q) = %q, want %q", tool, got, want)
		}
	}
}

// engineConformanceDir is the AIP conformance suite shipped beside the project.
var engineConformanceDir = filepath.Join("..", "..", "shared", "spec", "aip", "conformance")

type engineVectorFile struct {
	Tests []struct {
		ID     string  `json:"id"`
		Policy *string `json:"policy"`
		Input  struct {
			Type    string          `json:"type"`
			Method  string          `json:"method"`
			Tool    string          `json:"tool"`
			Args    json.RawMessage `json:"args"`
			Context struct {
				PreviousCalls int    `json:"previous_calls"`
				UserResponse  string `json:"user_response"`
			} `json:"context"`
		} `json:"input"`
		Expected struct {
			Decision  string `json:"decision"`
			ErrorCode *int   `json:"error_code"`
			Violation *bool  `json:"violation"`
			ErrorData struct {
				Tool   string `json:"tool"`
				Method string `json:"method"`
			} `json:"error_data"`
			ResponseFormat struct {
				Error struct {
					Code int `json:"code"`
					Data struct {
						Reason string `json:"reason"`
					} `json:"data"`
				} `json:"error"`
			} `json:"response_format"`
		} `json:"expected"`
	} `json:"tests"`
}

// TestConformanceVectors replays the AIP basic/ vectors and the full/
// argument and normalization vectors through DecideMethod and DecideTool.
// Human approval (err-020/021) happens after the engine, so for those the
// engine's part, Ask, is checked.
func TestConformanceVectors(t *testing.T) {
	_, err := os.Stat(engineConformanceDir)
	testenv.RequireComponent(t, "the conformance vectors in ../shared", err)
	files := []string{"basic/authorization.yaml", "basic/errors.yaml", "basic/methods.yaml", "full/arguments.yaml", "full/normalization.yaml"}
	ran := 0
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(engineConformanceDir, f))
		if err != nil {
			t.Fatal(err)
		}
		var vf engineVectorFile
		if err := yaml.Unmarshal(data, &vf); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, v := range vf.Tests {
			if v.Input.Type == "response" || v.Input.Method == "" {
				continue
			}
			ran++
			t.Run(v.ID, func(t *testing.T) {
				var p *Policy
				if v.Policy != nil {
					p = mustPolicyYAML(t, *v.Policy)
				}
				e := mustEngine(t, p)
				d := e.DecideMethod(v.Input.Method)
				if d.Action != Block && d.Method == engineToolsCall {
					// Rate limits are counted by the caller (package
					// enforce), here with the same in-memory store.
					limits := memory.NewRateLimiter()
					decide := func(call ToolCall) Decision {
						if rl, rule, ok := e.RateLimit(call.Name); ok {
							if allowed, err := limits.Allow(context.Background(), NormalizeName(call.Name), rl.Count, rl.Per, testNow); err != nil || !allowed {
								return e.RateLimited(call.Name, rule)
							}
						}
						return e.DecideTool(call)
					}
					call := ToolCall{Name: v.Input.Tool, Arguments: v.Input.Args}
					for range v.Input.Context.PreviousCalls {
						decide(call)
					}
					d = decide(call)
				}
				want := v.Expected.Decision
				if v.Input.Context.UserResponse != "" {
					want = "ASK"
				}
				got := d.Action.String()
				if d.ViolationType == aip.ViolationRateLimited {
					got = "RATE_LIMITED"
				}
				if got != want {
					t.Fatalf("decision %s (%+v), want %s", got, d, want)
				}
				if want == "ASK" {
					return
				}
				if c := v.Expected.ErrorCode; c != nil && d.Code != *c {
					t.Errorf("code %d, want %d", d.Code, *c)
				}
				if c := v.Expected.ResponseFormat.Error.Code; c != 0 && d.Code != c {
					t.Errorf("code %d, want %d", d.Code, c)
				}
				if v.Expected.Violation != nil && d.Violation() != *v.Expected.Violation {
					t.Errorf("violation %v, want %v", d.Violation(), *v.Expected.Violation)
				}
				if r := v.Expected.ResponseFormat.Error.Data.Reason; r != "" && d.Reason != r {
					t.Errorf("reason %q, want %q", d.Reason, r)
				}
				if tool := v.Expected.ErrorData.Tool; tool != "" && d.Tool != tool {
					t.Errorf("tool %q, want %q", d.Tool, tool)
				}
				if m := v.Expected.ErrorData.Method; m != "" && d.Method != m {
					t.Errorf("method %q, want %q", d.Method, m)
				}
			})
		}
	}
	if ran < 50 {
		t.Errorf("replayed only %d vectors", ran)
	}
	t.Logf("replayed %d vectors", ran)
}

func TestNormalizeNameIsIdempotent(t *testing.T) {
	for _, s := range []string{"e\u200b\u0301", "E\u200c\u0301", "\u212b", "İ", "ǅ", "\u200b read_file", "ﬁle", "Ａ\ufeff\u030a"} {
		n := NormalizeName(s)
		if again := NormalizeName(n); again != n {
			t.Errorf("NormalizeName(%q) = %q, which normalizes to %q", s, n, again)
		}
	}
	if got := NormalizeName("cafe\u200b\u0301"); got != "café" {
		t.Errorf("got %q, want the composed form", got)
	}
}

// The default allowed_methods follows the client's protocol era; a
// policy's own list applies to every era.
func TestDefaultAllowedMethodsAreEraAware(t *testing.T) {
	def, err := NewEngine(&Policy{APIVersion: "aip.io/v1alpha2", Kind: "AgentPolicy", Metadata: Metadata{Name: "d"}}, EngineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	explicit, err := NewEngine(&Policy{APIVersion: "aip.io/v1alpha2", Kind: "AgentPolicy", Metadata: Metadata{Name: "e"},
		Spec: Spec{AllowedMethods: []string{"initialize", "tools/call"}}}, EngineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		engine  *Engine
		method  string
		era     string
		allowed bool
	}{
		{def, "initialize", "2025-11-25", true},
		{def, "ping", "", true},
		{def, "server/discover", "2025-11-25", false},
		{def, "server/discover", "2026-07-28", true},
		{def, "subscriptions/listen", "2026-07-28", true},
		{def, "tasks/get", "2026-07-28", true},
		{def, "initialize", "2026-07-28", false},
		{def, "ping", "2026-07-28", false},
		{def, "tools/call", "2026-07-28", true},
		{def, "resources/read", "2026-07-28", false},
		{explicit, "initialize", "2026-07-28", true},
		{explicit, "server/discover", "2026-07-28", false},
	}
	for _, c := range cases {
		d := c.engine.DecideMethodIn(c.method, c.era)
		if got := d.Action != Block; got != c.allowed {
			t.Errorf("%s in era %q (explicit list %v): allowed %v, want %v", c.method, c.era, !c.engine.EraAware(), got, c.allowed)
		}
	}
}
