package conformance

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/agentid/agentid/internal/testenv"
)

func TestBasicAndFullVectorsAllPass(t *testing.T) {
	rep, err := Run(context.Background(), Options{Suite: testenv.ConformanceDir(t), Level: "full"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		if r.Status != Pass {
			t.Errorf("%s %s %s: %s", r.Status, r.File, r.ID, r.Reason)
		}
	}
	if rep.Passed != 65 {
		t.Errorf("passed %d vectors, want all 65 of basic + full", rep.Passed)
	}
}

func TestResultsAreKeyedByFileAndID(t *testing.T) {
	// auth-001 exists in basic/authorization.yaml and in
	// server/authentication.yaml; both must be reported separately.
	rep, err := Run(context.Background(), Options{Suite: testenv.ConformanceDir(t), Level: "server", Only: []string{"auth-001"}})
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]bool{}
	for _, r := range rep.Results {
		files[r.File] = true
	}
	if !files["basic/authorization.yaml"] || !files["server/authentication.yaml"] {
		t.Fatalf("results %+v", rep.Results)
	}
}

func TestEverySkipHasAReasonAndTheSummaryIsLast(t *testing.T) {
	rep, err := Run(context.Background(), Options{Suite: testenv.ConformanceDir(t), Level: "server"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		if r.Status == Skip && r.Reason == "" {
			t.Errorf("%s %s skipped without a reason", r.File, r.ID)
		}
	}
	var out bytes.Buffer
	rep.Write(&out, false)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if got := lines[len(lines)-1]; got != rep.Summary() {
		t.Errorf("last line %q, want the summary %q", got, rep.Summary())
	}
}

func TestRunRejectsUnknownLevelsAndMissingSuites(t *testing.T) {
	if _, err := Run(context.Background(), Options{Suite: testenv.ConformanceDir(t), Level: "gold"}); err == nil {
		t.Error("unknown level accepted")
	}
	if _, err := Run(context.Background(), Options{Suite: "/nonexistent"}); err == nil {
		t.Error("missing suite accepted")
	}
}

func TestSubset(t *testing.T) {
	tests := []struct {
		name      string
		want, got any
		ok        bool
	}{
		{"extra members in got are fine", map[string]any{"a": 1.0}, map[string]any{"a": 1.0, "b": "x"}, true},
		{"a missing member fails", map[string]any{"a": 1.0}, map[string]any{"b": 1.0}, false},
		{"nested members are compared", map[string]any{"e": map[string]any{"code": -32001.0}}, map[string]any{"e": map[string]any{"code": -32002.0}}, false},
		{"string and number ids differ", map[string]any{"id": "1"}, map[string]any{"id": 1.0}, false},
	}
	for _, tt := range tests {
		if subset(tt.want, tt.got) != tt.ok {
			t.Errorf("%s: subset = %v", tt.name, !tt.ok)
		}
	}
}

func TestIdentityVectorsAllPass(t *testing.T) {
	rep, err := Run(context.Background(), Options{Suite: testenv.ConformanceDir(t), Level: "identity"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		if r.Status != Pass {
			t.Errorf("%s %s %s: %s", r.Status, r.File, r.ID, r.Reason)
		}
	}
	// Three identity vectors pass on what the runner defines for them; they
	// are counted apart from the 85 that pass on their own expectations.
	runnerDefined := map[string]bool{}
	for _, r := range rep.Results {
		if r.RunnerDefined != "" {
			runnerDefined[r.ID] = true
		}
	}
	want := map[string]bool{"identity-030": true, "validation-010": true, "validation-060": true}
	if !reflect.DeepEqual(runnerDefined, want) {
		t.Errorf("runner-defined %v, want %v", runnerDefined, want)
	}
	if rep.Passed != 65+23-3 || rep.RunnerDefined != 3 {
		t.Errorf("passed %d + %d runner-defined, want 85 + 3 (basic + full + identity)", rep.Passed, rep.RunnerDefined)
	}
}

// TestIdentityCheckerCatchesWrongExpectations proves the identity harness
// compares what it claims to: the same vectors with altered expectations
// must fail.
func TestIdentityCheckerCatchesWrongExpectations(t *testing.T) {
	src := testenv.ConformanceDir(t)
	suite := t.TempDir()
	if err := os.MkdirAll(filepath.Join(suite, "identity"), 0o755); err != nil {
		t.Fatal(err)
	}
	alter := map[string][][2]string{
		"tokens.yaml": {
			{"ttl_seconds: 600", "ttl_seconds: 601"},
			{"nonce_length: 32", "nonce_length: 31"},
			{`token_id: "token-2"`, `token_id: "token-1"`},
			{`version: "aip/v1alpha2"`, `version: "aip/v1alpha1"`},
		},
		"validation.yaml": {
			{`token_error: "replay_detected"`, `token_error: "token_expired"`},
			{`token_error: "session_mismatch"`, `token_error: "binding_mismatch"`},
			{`token_error: "policy_changed"`, `token_error: "malformed"`},
			{"error_code: -32008\n      error_message", "error_code: -32009\n      error_message"},
		},
	}
	want := 0
	for file, edits := range alter {
		data, err := os.ReadFile(filepath.Join(src, "identity", file))
		if err != nil {
			t.Fatal(err)
		}
		text := string(data)
		for _, e := range edits {
			if !strings.Contains(text, e[0]) {
				t.Fatalf("%s no longer contains %q", file, e[0])
			}
			text = strings.Replace(text, e[0], e[1], 1)
			want++
		}
		if err := os.WriteFile(filepath.Join(suite, "identity", file), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := Run(context.Background(), Options{Suite: suite, Level: "identity"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed != want {
		var out bytes.Buffer
		rep.Write(&out, false)
		t.Fatalf("%d vectors failed, want the %d altered ones:\n%s", rep.Failed, want, out.String())
	}
}

func TestServerVectorsPassButWhereTheyContradictTheSpec(t *testing.T) {
	rep, err := Run(context.Background(), Options{Suite: testenv.ConformanceDir(t), Level: "server"})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range rep.Results {
		if !strings.HasPrefix(r.File, "server/") {
			continue
		}
		n++
		_, documented := deviations[r.ID]
		switch {
		case r.Status == Pass && !documented:
		case r.Status == Fail && documented && r.Deviation != "":
		default:
			t.Errorf("%s %s: %s %q (deviation %q)", r.File, r.ID, r.Status, r.Reason, r.Deviation)
		}
	}
	if n != 24 {
		t.Errorf("%d server vectors ran, want 24", n)
	}
	if rep.Unexpected() != 0 || rep.Deviations != len(deviations) {
		t.Errorf("%d unexpected failures, %d deviations (want 0, %d)", rep.Unexpected(), rep.Deviations, len(deviations))
	}
}

// TestServerCheckerCatchesWrongExpectations proves the server harness
// compares what it claims to: altered expectations must fail.
func TestServerCheckerCatchesWrongExpectations(t *testing.T) {
	src := testenv.ConformanceDir(t)
	suite := t.TempDir()
	if err := os.MkdirAll(filepath.Join(suite, "server"), 0o755); err != nil {
		t.Fatal(err)
	}
	alter := map[string][][2]string{
		"endpoints.yaml": {
			{`reason: "Tool not in allowed_tools list"`, `reason: "Tool not allowed"`},
			{`message: "Value does not match pattern: ^/allowed/.*"`, `message: "Value does not match"`},
			{`policy_hash_length: 64`, `policy_hash_length: 63`},
			{`expires_in: ">0"`, `expires_in: ">100000"`},
			{`- "aip_decisions_total"`, `- "aip_decision_total_x"`},
			{"          http_status: 429", "          http_status: 200"},
		},
		"authentication.yaml": {
			{`token_error: "token_expired"`, `token_error: "replay_detected"`},
			{`Authorization: "Basic dXNlcjpwYXNz"  # Basic auth, not Bearer`, `Authorization: "Bearer basic-is-not-bearer"`},
		},
	}
	want := 0
	for file, edits := range alter {
		data, err := os.ReadFile(filepath.Join(src, "server", file))
		if err != nil {
			t.Fatal(err)
		}
		text := string(data)
		for _, e := range edits {
			if !strings.Contains(text, e[0]) {
				t.Fatalf("%s no longer contains %q", file, e[0])
			}
			text = strings.Replace(text, e[0], e[1], 1)
			want++
		}
		if err := os.WriteFile(filepath.Join(suite, "server", file), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := Run(context.Background(), Options{Suite: suite, Level: "server"})
	if err != nil {
		t.Fatal(err)
	}
	if got := rep.Unexpected(); got != want {
		var out bytes.Buffer
		rep.Write(&out, false)
		t.Fatalf("%d vectors failed unexpectedly, want the %d altered ones:\n%s", got, want, out.String())
	}
}
