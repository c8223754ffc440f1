package policy

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentid/agentid/internal/testenv"

	"github.com/agentid/agentid/aip"
	"sigs.k8s.io/yaml"
)

// header is the fixed part of every test document; specDoc appends a spec
// body indented under "spec:".
const header = "apiVersion: aip.io/v1alpha2\nkind: AgentPolicy\nmetadata:\n  name: test\n"

func specDoc(body string) string {
	if body == "" {
		return header + "spec: {}\n"
	}
	var b strings.Builder
	b.WriteString(header + "spec:\n")
	for _, line := range strings.Split(strings.TrimRight(body, "\n"), "\n") {
		b.WriteString("  " + line + "\n")
	}
	return b.String()
}

// fieldErrors returns the FieldErrors of a load error, failing the test if
// err is not a *LoadError.
func fieldErrors(t *testing.T, err error) []FieldError {
	t.Helper()
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("error %v (%T) is not a *LoadError", err, err)
	}
	return le.Errors
}

func hasFieldError(errs []FieldError, field, substr string) bool {
	for _, e := range errs {
		if e.Field == field && strings.Contains(e.Message, substr) {
			return true
		}
	}
	return false
}

func hasWarning(ws []Warning, field, substr string) bool {
	for _, w := range ws {
		if w.Field == field && strings.Contains(w.Message, substr) {
			return true
		}
	}
	return false
}

func TestLoadRejectsMalformedDocuments(t *testing.T) {
	tests := []struct {
		name    string
		doc     string
		field   string
		message string
	}{
		{"duplicate keys fail the load", header + "spec:\n  mode: enforce\n  mode: monitor\n", "spec", `key "mode" appears more than once (lines 6 and 7)`},
		{"duplicate nested keys fail the load", specDoc("tool_rules:\n  - tool: a\n    allow_args:\n      x: '^a$'\n      x: '^b$'"), "spec.tool_rules[0].allow_args", `key "x" appears more than once (lines 9 and 10)`},
		{"content after a flow mapping fails closed", "{apiVersion: aip.io/v1alpha2, kind: AgentPolicy, metadata: {name: t}, spec: {}}\nspec: {mode: monitor}\n", "", "invalid YAML"},
		{"a second YAML document fails closed", specDoc("mode: enforce") + "---\n" + specDoc("mode: monitor"), "", "multiple YAML documents"},
		{"an empty second document fails closed", specDoc("") + "---\n", "", "multiple YAML documents"},
		{"an empty document is rejected", "", "", "empty document"},
		{"a comment-only document is rejected", "# nothing\n", "", "empty document"},
		{"a scalar document is rejected", "hello\n", "", "must be a mapping"},
		{"a list document is rejected", "- a\n- b\n", "", "must be a mapping"},
		{"integer keys are rejected", specDoc("tool_rules:\n  - tool: a\n    allow_args:\n      1: '^a$'"), "spec.tool_rules[0].allow_args", "non-string key"},
		{"YAML 1.1 boolean keys are rejected", specDoc("on: true"), "spec", "non-string key"},
		{"null keys are rejected", specDoc("~: x"), "spec", "non-string key"},
		{"invalid YAML syntax is reported", header + "spec: [\n", "", "invalid YAML"},
		{"non-finite numbers are rejected", specDoc("mode: .nan"), "spec.mode", "non-finite"},
		{"documents over the size cap are rejected", specDoc("") + "#" + strings.Repeat("x", MaxDocumentSize), "", "larger than"},
		{"deep nesting is rejected", header + "spec:\n  x: " + strings.Repeat("[", 100) + strings.Repeat("]", 100) + "\n", "spec.x" + strings.Repeat("[0]", maxDepth-1), "nested deeper"},
		{"tabs in indentation are a YAML error", header + "spec:\n\tmode: enforce\n", "", "invalid YAML"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _, err := Parse([]byte(tt.doc))
			if err == nil {
				t.Fatalf("Parse accepted the document: %+v", p.Spec)
			}
			errs := fieldErrors(t, err)
			if !hasFieldError(errs, tt.field, tt.message) {
				t.Fatalf("want error at %q containing %q, got %v", tt.field, tt.message, err)
			}
		})
	}
}

// TestLoadRefusesKeysThatCollideAfterConversion: a policy is read as JSON,
// and YAML keys that differ as written but become the same JSON member name
// would otherwise leave it to Go's map order which value counts (and so
// what the policy hash and signature cover). Each case is refused with the
// mapping's field path and every spelling involved.
func TestLoadRefusesKeysThatCollideAfterConversion(t *testing.T) {
	args := func(keys string) string {
		return specDoc("tool_rules:\n  - tool: a\n    allow_args:\n" + keys)
	}
	const argsField = "spec.tool_rules[0].allow_args"
	tests := []struct {
		name    string
		doc     string
		field   string
		message string
	}{
		{"a quoted \"0\" and an unquoted +0 collide", args("      \"0\": '^a$'\n      +0: '^b$'"), argsField,
			`keys "0" (line 9) and +0 (line 10) both become the JSON member "0" (YAML reads unquoted +0 as a number; quote keys to keep them distinct)`},
		{"the fuzz finding {120,\"0\":Z,+0} collides", `{120,"0":Z,+0}`, "", `keys "0" (line 1) and +0 (line 1) both become the JSON member "0"`},
		{"hex, octal-looking and decimal spellings of zero collide", args("      0x0: a\n      00: b\n      \"0\": c"), argsField,
			`keys "0" (line 11), 0x0 (line 9) and 00 (line 10) all become the JSON member "0" (YAML reads unquoted 0x0 and 00 as numbers; quote keys to keep them distinct)`},
		{"1, \"1\" and 1.0 collide", args("      1: a\n      \"1\": b\n      1.0: c"), argsField,
			`keys "1" (line 10), 1 (line 9) and 1.0 (line 11) all become the JSON member "1"`},
		{"true and \"true\" collide", args("      true: a\n      \"true\": b"), argsField,
			`keys "true" (line 10) and true (line 9) both become the JSON member "true" (YAML reads unquoted true as a boolean`},
		{"the YAML 1.1 booleans yes and on collide with \"true\"", args("      yes: a\n      on: b\n      'true': c"), argsField,
			`keys "true" (line 11), yes (line 9) and on (line 10) all become the JSON member "true" (YAML reads unquoted yes and on as booleans`},
		{"off and \"false\" collide", specDoc("off: a\n\"false\": b"), "spec", `keys "false" (line 7) and off (line 6) both become the JSON member "false"`},
		{"~ and \"null\" collide", specDoc("~: a\n\"null\": b"), "spec", `keys "null" and ~ both become the JSON member "null" (YAML reads ~, null and an empty key as null`},
		{"floats that round to the same name collide", args("      0.1: a\n      0.100000001: b"), argsField, `keys 0.1 (line 9) and 0.100000001 (line 10) both become the JSON member "0.1"`},
		{"a key from a << merge collides with an explicit key", header + "x: &base {mode: monitor}\nspec:\n  <<: *base\n  mode: enforce\n", "spec",
			`key "mode" appears more than once (lines 5 and 8)`},
		{"a merged key collides with a differently spelled explicit key", header + "x: &base {\"0\": a}\nspec:\n  <<: *base\n  0: b\n", "spec",
			`keys "0" (line 5) and 0 (line 8) both become the JSON member "0"`},
		{"two merged mappings with a common key collide", header + "spec:\n  <<: [{mode: monitor}, {mode: enforce}]\n", "spec", `key "mode" appears more than once (line 6)`},
		{"an alias used as a key collides with the key it repeats", header + "x: &k mode\nspec:\n  *k : monitor\n  mode: enforce\n", "spec",
			`key "mode" appears more than once (lines 5 and 8)`},
		{"a flow mapping's duplicate keys collide", specDoc("{mode: enforce, mode: monitor}"), "spec", `key "mode" appears more than once (line 6)`},
		{"a collision at the top level is refused", header + "spec: {}\n'kind': AgentPolicy\n", "", `key "kind" appears more than once (lines 2 and 6)`},
		{"a collision is reported before a non-string key", args("      1: a\n      \"1\": b\n      2: c"), argsField, `keys "1" (line 10) and 1 (line 9)`},
		{"a mapping used as a key is refused", header + "x: &m {a: 1}\nspec:\n  ? *m\n  : 1\n", "", "a mapping or a sequence cannot be a mapping key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _, err := Parse([]byte(tt.doc))
			if err == nil {
				t.Fatalf("Parse accepted the document: %+v", p.Spec)
			}
			errs := fieldErrors(t, err)
			if !hasFieldError(errs, tt.field, tt.message) {
				t.Fatalf("want error at %q containing\n\t%s\ngot\n\t%v", tt.field, tt.message, err)
			}
			// The same bytes give the same error, every time.
			for range 20 {
				if _, _, err2 := Parse([]byte(tt.doc)); err2 == nil || err2.Error() != err.Error() {
					t.Fatalf("error not deterministic:\n\t%v\n\t%v", err, err2)
				}
			}
		})
	}
}

// TestLoadErrorsComeInAFixedOrder: errors and warnings are sorted by field
// path and message, so that the same document always reads the same, even
// where the schema library finds them in map order and even for fields that
// the numeric-aware field order ranks equal (["0"] and ["000"]); a fuzz
// finding.
func TestLoadErrorsComeInAFixedOrder(t *testing.T) {
	doc := []byte(`{"0":[0,000,"0"],"000000000000000":00002}`)
	_, _, first := Parse(doc)
	if first == nil {
		t.Fatal("Parse accepted the document")
	}
	want := "policy: 6 errors:\n\t[\"0\"]: unknown field\n\t[\"000000000000000\"]: unknown field\n\t" +
		"apiVersion: required field is missing\n\tkind: required field is missing\n\tmetadata: required field is missing\n\tspec: required field is missing"
	if first.Error() != want {
		t.Fatalf("got\n%v\nwant\n%s", first, want)
	}
	for range 50 {
		if _, _, err := Parse(doc); err.Error() != first.Error() {
			t.Fatalf("error order changed:\n%v\n%v", first, err)
		}
	}
}

// TestLoadKeepsKeysThatOnlyLookAlike: keys that stay distinct as JSON load,
// whatever they look like in YAML.
func TestLoadKeepsKeysThatOnlyLookAlike(t *testing.T) {
	doc := specDoc("tool_rules:\n  - tool: a\n    allow_args:\n      \"0\": a\n      \"+0\": b\n      \"0x0\": c\n      \"00\": d\n      \"true\": e\n      \"yes\": f\n      \"null\": g\n      \"~\": h\n      \"<<\": j\n      0 : k")
	if _, _, err := Parse([]byte(doc)); err == nil || !strings.Contains(err.Error(), `keys "0" (line 9) and 0 (line 18)`) {
		t.Fatalf("the last key should collide with \"0\": %v", err)
	}
	doc = doc[:strings.LastIndex(doc, "      0 : k")]
	p, _, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	got := p.Spec.ToolRules[0].AllowArgs
	want := map[string]string{"0": "a", "+0": "b", "0x0": "c", "00": "d", "true": "e", "yes": "f", "null": "g", "~": "h", "<<": "j"}
	if len(got) != len(want) {
		t.Fatalf("allow_args = %q, want %q", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("allow_args[%q] = %q, want %q", k, got[k], v)
		}
	}
}

// TestLoadRejectsAliasBombsBeforeExpanding checks that each bomb is refused
// by the guard meant for it, which stops at a fixed budget of work: yaml.v2's
// alias/node ratio for the billion laughs, the expansion budget
// (maxExpandedSize) for the aliased large scalar. Time is not measured; an
// unguarded expansion would exhaust memory or go test's -timeout.
func TestLoadRejectsAliasBombsBeforeExpanding(t *testing.T) {
	// Nine levels of ten aliases each: 10^9 nodes when expanded.
	var b strings.Builder
	b.WriteString(header + "spec:\n  allowed_tools: &a0 [\"lol\"]\n")
	for i := 1; i <= 9; i++ {
		b.WriteString("  x" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " [")
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(",")
			}
			b.WriteString("*a" + string(rune('0'+i-1)))
		}
		b.WriteString("]\n")
	}
	// Few aliases of one large scalar: within yaml.v2's alias ratio, but
	// hundreds of megabytes once converted to JSON.
	big := header + "spec:\n  protected_paths: [&s \"" + strings.Repeat("x", 3<<20) + "\"" + strings.Repeat(", *s", 99) + "]\n"

	tests := []struct {
		name, doc, guard string
	}{
		{"billion laughs", b.String(), "excessive aliasing"},
		{"aliased large scalar", big, fmt.Sprintf("document expands to more than %d bytes", maxExpandedSize)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Parse([]byte(tt.doc))
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("Parse accepted an alias bomb or failed otherwise: %v", err)
			}
			if !strings.Contains(err.Error(), tt.guard) {
				t.Fatalf("refused by %q, want the %q guard", err, tt.guard)
			}
		})
	}
}

func TestLoadAcceptsAliasesWithinLimits(t *testing.T) {
	doc := header + "spec:\n  allowed_tools: &tools [read_file, list_directory]\n  server:\n    fail_open_constraints:\n      allowed_tools: *tools\n    failover_mode: fail_open\n"
	p, _, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Spec.Server.FailOpenConstraints.AllowedTools; len(got) != 2 || got[1] != "list_directory" {
		t.Fatalf("alias not expanded: %v", got)
	}
}

func TestLoadRejectsUnknownAndCaseVariantKeys(t *testing.T) {
	tests := []struct {
		name    string
		doc     string
		field   string
		message string
	}{
		{"a typo in a spec key is an unknown field", specDoc("protectd_paths: [~/.ssh]"), "spec.protectd_paths", `unknown field (did you mean "protected_paths"?)`},
		{"a case variant of allowed_tools is rejected", specDoc("Allowed_Tools: [read_file]"), "spec.Allowed_Tools", `did you mean "allowed_tools"? keys are case-sensitive`},
		{"a case variant of a top-level key is rejected", strings.Replace(specDoc(""), "kind:", "Kind:", 1), "Kind", "unknown field"},
		{"unknown tool rule keys are rejected", specDoc("tool_rules:\n  - tool: a\n    allowed_args: {x: '^a$'}"), "spec.tool_rules[0].allowed_args", "unknown field"},
		{"unknown identity keys are rejected", specDoc("identity:\n  token_tll: 5m"), "spec.identity.token_tll", "unknown field"},
		{"unknown keys are rejected in keys", specDoc("identity:\n  keys:\n    external: {type: vault}"), "spec.identity.keys.external", "unknown field"},
		{"unknown keys are rejected in tls", specDoc("server:\n  tls:\n    ca: x"), "spec.server.tls.ca", "unknown field"},
		{"unknown metadata keys are rejected", strings.Replace(specDoc(""), "  name: test\n", "  name: test\n  labels: {}\n", 1), "metadata.labels", "unknown field"},
		{"unknown top-level keys are rejected", specDoc("") + "status: {}\n", "status", "unknown field"},
		{"a missing spec is reported", header, "spec", "required field is missing"},
		{"a missing metadata.name is reported", "apiVersion: aip.io/v1alpha2\nkind: AgentPolicy\nmetadata: {}\nspec: {}\n", "metadata.name", "required field is missing"},
		{"an empty metadata.name is rejected", strings.Replace(specDoc(""), "name: test", `name: ""`, 1), "metadata.name", "must not be empty"},
		{"an unknown apiVersion is rejected", strings.Replace(specDoc(""), "aip.io/v1alpha2", "aip.io/v9", 1), "apiVersion", `must be one of "aip.io/v1alpha1", "aip.io/v1alpha2"`},
		{"a wrong kind is rejected", strings.Replace(specDoc(""), "AgentPolicy", "Policy", 1), "kind", `must be "AgentPolicy"`},
		{"a numeric string field asks for quotes", strings.Replace(specDoc(""), "  name: test\n", "  name: test\n  version: 1.0\n", 1), "metadata.version", "quote the value"},
		{"a YAML 1.1 boolean in a string list asks for quotes", specDoc("allowed_tools: [yes]"), "spec.allowed_tools[0]", "got boolean"},
		{"a string where a boolean belongs is rejected", specDoc(`strict_args_default: "true"`), "spec.strict_args_default", "must be a boolean, got string"},
		{"an empty DLP block needs patterns", specDoc("dlp: {}"), "spec.dlp.patterns", "required field is missing"},
		{"an empty DLP pattern list is rejected", specDoc("dlp:\n  patterns: []"), "spec.dlp.patterns", "must not be empty"},
		{"a huge max_requests is rejected", specDoc("server:\n  failover_mode: fail_open\n  fail_open_constraints:\n    max_requests: 100000000000000000000000"), "spec.server.fail_open_constraints.max_requests", "at most"},
		{"a fractional max_requests is rejected", specDoc("server:\n  failover_mode: fail_open\n  fail_open_constraints:\n    max_requests: 1.5"), "spec.server.fail_open_constraints.max_requests", "integer"},
		{"a malformed signature is rejected", strings.Replace(specDoc(""), "  name: test\n", "  name: test\n  signature: nope\n", 1), "metadata.signature", "<algorithm>:<base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Parse([]byte(tt.doc))
			if err == nil {
				t.Fatal("Parse accepted the document")
			}
			if !hasFieldError(fieldErrors(t, err), tt.field, tt.message) {
				t.Fatalf("want error at %q containing %q, got %v", tt.field, tt.message, err)
			}
		})
	}
}

func TestLoadReportsAllErrorsSortedByField(t *testing.T) {
	doc := specDoc(`mode: block
protectd_paths: [x]
tool_rules:
  - tool: a
    action: deny
  - tool: b
  - tool: c
  - tool: d
  - tool: e
  - tool: f
  - tool: g
  - tool: h
  - tool: i
  - tool: j
  - tool: k
    rate_limit: lots
  - tool: l
    allow_args:
      q: "(a"
identity:
  token_ttl: 5m
  rotation_interval: 6m`)
	_, _, err := Parse([]byte(doc))
	errs := fieldErrors(t, err)
	want := []string{
		"spec.identity.rotation_interval",
		"spec.mode",
		"spec.protectd_paths",
		"spec.tool_rules[0].action",
		"spec.tool_rules[10].rate_limit",
		"spec.tool_rules[11].allow_args.q",
	}
	var got []string
	for _, e := range errs {
		got = append(got, e.Field)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("fields:\n got %v\nwant %v\nerror: %v", got, want, err)
	}
	if !strings.HasPrefix(err.Error(), "policy: 6 errors:") {
		t.Errorf("Error() = %q", err.Error())
	}
	var fe FieldError
	if !errors.As(err, &fe) || fe.Field != want[0] {
		t.Errorf("errors.As(FieldError) = %+v", fe)
	}
}

func TestFieldErrorAndWarningFormat(t *testing.T) {
	if got := (FieldError{Field: "metadata.name", Message: "must not be empty"}).Error(); got != "policy: metadata.name: must not be empty" {
		t.Errorf("FieldError.Error() = %q", got)
	}
	if got := (FieldError{Message: "empty document"}).Error(); got != "policy: empty document" {
		t.Errorf("FieldError.Error() = %q", got)
	}
	if got := (Warning{Field: "spec.mode", Message: "monitor"}).String(); got != "spec.mode: monitor" {
		t.Errorf("Warning.String() = %q", got)
	}
	one := &LoadError{Errors: []FieldError{{Field: "a", Message: "b"}}}
	if one.Error() != "policy: a: b" {
		t.Errorf("LoadError.Error() = %q", one.Error())
	}
}

func TestLoadAcceptsV1Alpha1WithWarningsForV1Alpha2Fields(t *testing.T) {
	doc := strings.Replace(specDoc(`tool_rules:
  - tool: read_file
    schema_hash: sha256:`+strings.Repeat("a", 64)+`
dlp:
  scan_requests: true
  patterns:
    - name: k
      regex: "AKIA[0-9A-Z]{16}"
      scope: request
identity:
  enabled: true`), APIVersionV1Alpha2, APIVersionV1Alpha1, 1)
	p, warns, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"spec.identity", "spec.tool_rules[0].schema_hash", "spec.dlp.scan_requests", "spec.dlp.patterns[0].scope"} {
		if !hasWarning(warns, f, "v1alpha2 field") {
			t.Errorf("no v1alpha2 warning for %s; warnings: %v", f, warns)
		}
	}
	if !p.IdentityConfig().Enabled {
		t.Error("v1alpha2 fields in a v1alpha1 document must be honoured, not dropped")
	}
	// The same document as v1alpha2 has no such warnings.
	_, warns, err = Parse([]byte(strings.Replace(doc, APIVersionV1Alpha1, APIVersionV1Alpha2, 1)))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range warns {
		if strings.Contains(w.Message, "v1alpha2 field") {
			t.Errorf("unexpected warning %v", w)
		}
	}
}

func TestLoadAcceptsJSONDocuments(t *testing.T) {
	doc := `{"apiVersion":"aip.io/v1alpha2","kind":"AgentPolicy","metadata":{"name":"j"},"spec":{"allowed_tools":["read_file"]}}`
	p, _, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if p.Spec.AllowedTools[0] != "read_file" {
		t.Fatalf("got %v", p.Spec.AllowedTools)
	}
	if _, _, err := Parse([]byte(`{"apiVersion":"aip.io/v1alpha2","apiVersion":"aip.io/v1alpha2","kind":"AgentPolicy","metadata":{"name":"j"},"spec":{}}`)); err == nil {
		t.Fatal("duplicate JSON keys must fail")
	}
}

func TestLoadSetsAbsolutePathAndRaw(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "agent.yaml")
	doc := specDoc("allowed_tools: [read_file]")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	p, _, err := Load("./sub/../agent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if p.Path != path {
		t.Errorf("Path = %q, want %q", p.Path, path)
	}
	if string(p.Raw) != doc {
		t.Errorf("Raw = %q", p.Raw)
	}

	if _, _, err := Load(filepath.Join(dir, "missing.yaml")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want fs.ErrNotExist", err)
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, []byte(doc+"#"+strings.Repeat("x", MaxDocumentSize)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Load(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Load(big) = %v", err)
	}
}

func TestParseCopiesRaw(t *testing.T) {
	doc := []byte(specDoc(""))
	p, _, err := Parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	doc[0] = 'X'
	if p.Raw[0] != 'a' {
		t.Fatal("Parse must not alias the caller's buffer")
	}
}

func TestCheckReturnsWarnings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(path, []byte(specDoc("mode: monitor")), 0o600); err != nil {
		t.Fatal(err)
	}
	warns, err := Check(path)
	if err != nil {
		t.Fatal(err)
	}
	if !hasWarning(warns, "spec.mode", "not blocked") {
		t.Fatalf("warnings = %v", warns)
	}
}

func TestEmbeddedSchemaCompiles(t *testing.T) {
	if _, err := compiledSchema(); err != nil {
		t.Fatal(err)
	}
}

// The reference examples (reconstructed in testdata/examples from
// reference/aip.md §7) load, except the two whose regexes use lookahead,
// which RE2 cannot run; those must fail with a message that says why.
func TestLoadReferenceExamples(t *testing.T) {
	tests := []struct {
		file     string
		errField string
	}{
		{"agent.yaml", ""},
		{"agent-monitor.yaml", ""},
		{"docker-wrapper.yaml", ""},
		{"gemini-jack-defense.yaml", "spec.tool_rules[1].allow_args.path"},
		{"gpu-policy.yaml", ""},
		{"identity-server.yaml", ""},
		{"monitor-mode.yaml", ""},
		{"read-only.yaml", "spec.tool_rules[0].allow_args.command"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			p, warns, err := Load(filepath.Join("testdata", "examples", tt.file))
			if tt.errField == "" {
				if err != nil {
					t.Fatal(err)
				}
				if m := p.Mode(); m != aip.ModeEnforce && m != aip.ModeMonitor {
					t.Fatalf("Mode() = %q", m)
				}
				for _, w := range warns {
					t.Logf("warning: %v", w)
				}
				return
			}
			if err == nil {
				t.Fatal("loaded a policy with a lookahead regex")
			}
			if !hasFieldError(fieldErrors(t, err), tt.errField, "lookahead and lookbehind assertions are not supported") {
				t.Fatalf("want RE2 lookahead error at %s, got %v", tt.errField, err)
			}
		})
	}
}

// conformanceDir is the shared AIP conformance suite, relative to this
// package directory.
var conformanceDir = filepath.Join("..", "..", "shared", "spec", "aip", "conformance")

// TestLoadConformanceVectorPolicies loads every inline policy of the basic,
// full, identity and server vectors. The identity vectors with token_ttl 1s
// and no rotation_interval load only because an unset interval defaults to
// min(4m, 0.8*ttl) (decision 10).
func TestLoadConformanceVectorPolicies(t *testing.T) {
	_, err := os.Stat(conformanceDir)
	testenv.RequireComponent(t, "the conformance vectors in ../shared", err)
	n := 0
	for _, level := range []string{"basic", "full", "identity", "server"} {
		files, err := filepath.Glob(filepath.Join(conformanceDir, level, "*.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		for _, file := range files {
			for _, vp := range vectorPolicies(t, file) {
				n++
				t.Run(filepath.Base(file)+"/"+vp.where, func(t *testing.T) {
					p, _, err := Parse([]byte(vp.doc))
					if err != nil {
						t.Fatalf("%v\n%s", err, vp.doc)
					}
					if id := p.IdentityConfig(); id.RotationInterval >= id.TokenTTL {
						t.Fatalf("rotation %v >= ttl %v", id.RotationInterval, id.TokenTTL)
					}
				})
			}
		}
	}
	if n < 50 {
		t.Fatalf("found only %d vector policies", n)
	}
}

type vectorPolicy struct{ where, doc string }

// vectorPolicies returns every `policy:` or `content:` string in a vector
// file that is a policy document (DLP vectors also use `content:` for tool
// output).
func vectorPolicies(t testing.TB, file string) []vectorPolicy {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var tree any
	if err := yaml.Unmarshal(data, &tree); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var out []vectorPolicy
	var walk func(v any, where string)
	walk = func(v any, where string) {
		switch v := v.(type) {
		case map[string]any:
			if id, ok := v["id"].(string); ok {
				where = id
			}
			for k, child := range v {
				if s, ok := child.(string); ok && (k == "policy" || k == "content") && strings.Contains(s, "kind: AgentPolicy") {
					out = append(out, vectorPolicy{where + "/" + k, s})
					continue
				}
				walk(child, where)
			}
		case []any:
			for _, child := range v {
				walk(child, where)
			}
		}
	}
	walk(tree, "")
	return out
}

const benchPolicy = `apiVersion: aip.io/v1alpha2
kind: AgentPolicy
metadata:
  name: bench-agent
  version: "1.2.0"
spec:
  mode: enforce
  allowed_tools:
    - read_file
    - list_directory
    - search_files
    - git_status
  protected_paths:
    - ~/.ssh
    - ~/.aws/credentials
    - .env
  tool_rules:
    - tool: write_file
      action: ask
      allow_args:
        path: "^/workspace/.*$"
    - tool: http_request
      strict_args: true
      rate_limit: 10/minute
      allow_args:
        url: "^https://api\\.github\\.com/.*$"
        method: "^(GET|HEAD)$"
    - tool: postgres_query
      schema_hash: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
      allow_args:
        query: "^SELECT\\s.*$"
    - tool: exec
      action: block
  dlp:
    scan_requests: true
    max_scan_size: 512KB
    on_request_match: redact
    patterns:
      - name: AWS Key
        regex: "AKIA[0-9A-Z]{16}"
      - name: GitHub Token
        regex: "gh[pousr]_[A-Za-z0-9]{36}"
        scope: all
  identity:
    enabled: true
    token_ttl: 10m
    rotation_interval: 8m
    require_token: true
    session_binding: policy
    nonce_window: 15m
    audience: https://mcp.example.com/api
    nonce_storage:
      type: redis
      address: redis://127.0.0.1:6379
  server:
    enabled: true
    listen: 127.0.0.1:9443
    timeout: 3s
`

func BenchmarkParse(b *testing.B) {
	data := []byte(benchPolicy)
	if _, _, err := Parse(data); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}
