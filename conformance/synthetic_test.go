package conformance

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The vectors in this file are written here, not copied from the suite:
// each is a variant of a suite vector (or a made-up one) that the runner
// must fail, proving that it compares what the vector says.

// runSynthetic runs one vector file placed at level/name in a fresh suite.
func runSynthetic(t *testing.T, level, text string) *Report {
	t.Helper()
	suite := t.TempDir()
	if err := os.MkdirAll(filepath.Join(suite, level), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(suite, level, "synthetic.yaml"), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), Options{Suite: suite, Level: level})
	if err != nil {
		t.Fatal(err)
	}
	var out []Result
	for _, r := range rep.Results {
		if r.File == level+"/synthetic.yaml" {
			out = append(out, r)
		}
	}
	if len(out) != 1 {
		t.Fatalf("%d results for the synthetic vector: %+v", len(out), rep.Results)
	}
	rep.Results = out
	return rep
}

// expectResult checks the one result of rep: its status, and that its
// reason contains every fragment.
func expectResult(t *testing.T, rep *Report, status Status, fragments ...string) {
	t.Helper()
	r := rep.Results[0]
	if r.Status != status {
		t.Fatalf("%s %s: %s, want %s", r.ID, r.Reason, r.Status, status)
	}
	for _, f := range fragments {
		if !strings.Contains(r.Reason, f) {
			t.Errorf("reason %q lacks %q", r.Reason, f)
		}
	}
}

// policyHashVector is identity-041 with the given expectation for
// policy-v1 and identity setting of policy-v1.
func policyHashVector(v1, identityV1 string) string {
	return `name: synthetic
tests:
  - id: "identity-041"
    description: "Policy hash changes when policy changes"
    policies:
      - name: "policy-v1"
        content: |
          apiVersion: aip.io/v1alpha2
          kind: AgentPolicy
          metadata:
            name: changing-policy
          spec:
            allowed_tools:
              - tool_a
            identity:
              ` + identityV1 + `
      - name: "policy-v2"
        content: |
          apiVersion: aip.io/v1alpha2
          kind: AgentPolicy
          metadata:
            name: changing-policy
          spec:
            allowed_tools:
              - tool_a
              - tool_b
            identity:
              enabled: true
    expected:
      hash_policy_v1: "` + v1 + `"
      hash_policy_v2: "different_from_v1"
`
}

func TestPolicyHashVectorComparesItsExpectations(t *testing.T) {
	t.Run("as in the suite it passes", func(t *testing.T) {
		expectResult(t, runSynthetic(t, "identity", policyHashVector("different_from_v2", "enabled: true")), Pass)
	})
	t.Run("a wrong expectation fails", func(t *testing.T) {
		rep := runSynthetic(t, "identity", policyHashVector("same_as_v2", "enabled: true"))
		expectResult(t, rep, Fail, "hash_policy_v1 is different from, want same_as_v2")
	})
	t.Run("an unknown relation fails", func(t *testing.T) {
		expectResult(t, runSynthetic(t, "identity", policyHashVector("older_than_v2", "enabled: true")), Fail, `"older_than_v2" is not understood`)
	})
	t.Run("a reference to no policy fails", func(t *testing.T) {
		expectResult(t, runSynthetic(t, "identity", policyHashVector("different_from_v3", "enabled: true")), Fail, "names no policy")
	})
	t.Run("the hashes are read from the proxy's tokens", func(t *testing.T) {
		// With identity off under policy-v1 the proxy issues no token, so
		// there is no hash to read: the runner does not compute one itself.
		expectResult(t, runSynthetic(t, "identity", policyHashVector("different_from_v2", "enabled: false")), Fail, "policy-v1: identity is not enabled")
	})
}

// rotationVector is identity-030 with the given rotation_interval and second
// wait.
func rotationVector(interval, wait string) string {
	return `name: synthetic
tests:
  - id: "identity-030"
    description: "Token rotation before expiration"
    policy: |
      apiVersion: aip.io/v1alpha2
      kind: AgentPolicy
      metadata:
        name: rotation-test
      spec:
        allowed_tools:
          - test_tool
        identity:
          enabled: true
          token_ttl: "5m"
          rotation_interval: "` + interval + `"
    sequence:
      - action: "call"
        wait: "0s"
        input:
          method: "tools/call"
          tool: "test_tool"
          args: {}
        expected:
          token_id: "token-1"
      - action: "call"
        wait: "` + wait + `"
        input:
          method: "tools/call"
          tool: "test_tool"
          args: {}
        expected:
          token_id: "token-2"
          session_preserved: true
`
}

func TestRotationVectorNeedsARealRotation(t *testing.T) {
	t.Run("rotation after 4m passes", func(t *testing.T) {
		rep := runSynthetic(t, "identity", rotationVector("4m", "4m"))
		expectResult(t, rep, Pass)
		if rep.Results[0].RunnerDefined == "" || rep.Passed != 0 || rep.RunnerDefined != 1 {
			t.Errorf("token_id reading not labelled: %+v", rep)
		}
	})
	for _, tt := range []struct{ interval, wait string }{
		{"0s", "4m"},    // rotation disabled: every call still gets a fresh token, but no rotation
		{"4m", "3m59s"}, // before the interval
	} {
		t.Run("rotation_interval "+tt.interval+", wait "+tt.wait+" fails", func(t *testing.T) {
			expectResult(t, runSynthetic(t, "identity", rotationVector(tt.interval, tt.wait)), Fail,
				"token-2 is the same token as token-1 (the current token was not replaced)")
		})
	}
}

func TestUnknownKeysFailTheVector(t *testing.T) {
	const basicPolicy = `
    policy: |
      apiVersion: aip.io/v1alpha1
      kind: AgentPolicy
      metadata:
        name: p
      spec:
        allowed_tools: [read_file]`
	const identityPolicy = `
    policy: |
      apiVersion: aip.io/v1alpha2
      kind: AgentPolicy
      metadata:
        name: p
      spec:
        allowed_tools: [read_file]
        identity:
          enabled: true`
	tests := []struct {
		name, level, vector string
		reason              string
	}{
		{"an expected key", "basic", basicPolicy + `
    input: {method: tools/call, tool: read_file, args: {}}
    expected: {decision: ALLOW, token_error: ""}`, `key "expected.token_error"`},
		{"an input key", "basic", basicPolicy + `
    input: {method: tools/call, tool: read_file, args: {}, user: alice}
    expected: {decision: ALLOW}`, `key "input.user"`},
		{"a context key", "basic", basicPolicy + `
    input: {method: tools/call, tool: read_file, args: {}, context: {previous_calls: 1, within: 1m}}
    expected: {decision: ALLOW}`, `key "input.context.within"`},
		{"a case variant", "full", basicPolicy + `
    input: {method: tools/call, tool: read_file, args: {}}
    expected: {Decision: BLOCK}`, `key "expected.Decision"`},
		{"a top-level key", "full", basicPolicy + `
    input: {method: tools/call, tool: read_file, args: {}}
    expected: {decision: ALLOW}
    setup_script: true`, `key "setup_script"`},
		{"a DLP expectation on a request", "full", basicPolicy + `
    input: {method: tools/call, tool: read_file, args: {}}
    expected: {decision: ALLOW, redacted: false}`, "expected.redacted is only checked with input.type: response"},
		{"an identity expected key", "identity", identityPolicy + `
    input: {method: tools/call, tool: read_file, args: {}}
    expected: {decision: ALLOW, token_lifetime: 300}`, `key "expected.token_lifetime"`},
		{"a sequence step key", "identity", identityPolicy + `
    sequence:
      - {action: call, wait: 0s, expected: {token_id: token-1}}
      - {action: call, wait: 1s, expected: {token_id: token-1, token_rotated: false}}`, `key "sequence[1].expected.token_rotated"`},
		{"a sequence-only key on a single call", "identity", identityPolicy + `
    input: {method: tools/call, tool: read_file, args: {}}
    expected: {decision: ALLOW, session_preserved: true}`, `key "expected.session_preserved"`},
		{"a steps key", "identity", identityPolicy + `
    steps:
      - {action: issue_token, capture: {token: t}}
      - {action: use_token, input: {token: "${t}"}, expected: {decision: ALLOW}, delay: 1s}`, `key "steps[1].delay"`},
		{"an expectation on issue_token", "identity", identityPolicy + `
    steps:
      - {action: issue_token, capture: {token: t}, expected: {decision: ALLOW}}
      - {action: use_token, input: {token: "${t}"}, expected: {decision: ALLOW}}`, "issue_token takes no input or expected"},
		{"a token expectation", "identity", identityPolicy + `
    input: {method: tools/call, tool: read_file, args: {}}
    expected: {decision: ALLOW, token: {issuer: agentid}}`, `unknown token expectation "issuer"`},
		{"an unknown test_type", "identity", identityPolicy + `
    test_type: clock_skew
    steps:
      - {action: issue_token, capture: {token: t}}
      - {action: use_token, input: {token: "${t}"}, expected: {decision: ALLOW}}`, `test_type "clock_skew" is not understood`},
		{"no expectations at all", "identity", identityPolicy + `
    sequence:
      - {action: call, wait: 0s}`, "no expectations to compare"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := runSynthetic(t, tt.level, "name: synthetic\ntests:\n  - id: synthetic-001"+tt.vector+"\n")
			expectResult(t, rep, Fail, tt.reason)
		})
	}
}

func TestRunnerDefinedPassesAreLabelledAndCountedApart(t *testing.T) {
	// validation-060's shape: no steps, no expectations of its own.
	rep := runSynthetic(t, "identity", `name: synthetic
tests:
  - id: "validation-060"
    description: "Strict binding validates all context"
    policy: |
      apiVersion: aip.io/v1alpha2
      kind: AgentPolicy
      metadata:
        name: strict-binding
      spec:
        allowed_tools: [read_file]
        identity:
          enabled: true
          require_token: true
          session_binding: "strict"
    test_type: "context_change"
`)
	expectResult(t, rep, Pass)
	if rep.Passed != 0 || rep.RunnerDefined != 1 {
		t.Fatalf("passed %d, runner-defined %d", rep.Passed, rep.RunnerDefined)
	}
	var out bytes.Buffer
	rep.Write(&out, false)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if !strings.HasPrefix(lines[0], "PASS identity/synthetic.yaml validation-060 (runner-defined expectation: ") {
		t.Errorf("result line %q", lines[0])
	}
	if got := lines[len(lines)-2]; got != "runner-defined: 1 passed on expectations the runner defines, not counted as passed: identity/synthetic.yaml validation-060" {
		t.Errorf("line before the summary %q", got)
	}
	if got := lines[len(lines)-1]; got != "0 passed, 0 failed, 0 skipped" {
		t.Errorf("summary %q", got)
	}
}
