package enforce_test

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/agentid/agentid/aip"
	"github.com/agentid/agentid/enforce"
)

const checkPolicy = `apiVersion: aip.io/v1alpha2
kind: AgentPolicy
metadata: {name: check}
spec:
  mode: MODE
  allowed_tools: [read_file, file_write, limited]
  protected_paths: ["~/.ssh"]
  tool_rules:
    - tool: file_write
      action: allow
      allow_args:
        path: "^/allowed/.*"
    - tool: dangerous
      action: ask
    - tool: limited
      rate_limit: "1/minute"
  dlp:
    scan_requests: true
    on_request_match: block
    patterns:
      - name: AWS Key
        regex: "AKIA[A-Z0-9]{16}"
`

func TestCheckDecidesAsTheStdioPipelineDoes(t *testing.T) {
	ctx := context.Background()
	type want struct {
		decision   string
		code       int
		reason     string
		violations []enforce.Violation
	}
	cases := []struct {
		name  string
		mode  string
		calls []enforce.Call // all but the last are made first
		want  want
	}{
		{"an allowed tool is allowed", "enforce",
			[]enforce.Call{{Tool: "read_file", Arguments: []byte(`{"path":"/tmp/x"}`)}},
			want{decision: aip.DecisionAllow}},
		{"a tool outside the allowlist is blocked with the spec's reason", "enforce",
			[]enforce.Call{{Tool: "delete_file", Arguments: []byte(`{}`)}},
			want{aip.DecisionBlock, aip.CodeForbidden, "Tool not in allowed_tools list",
				[]enforce.Violation{{Type: aip.ViolationToolNotAllowed, Message: "Tool not in allowed_tools list"}}}},
		{"an argument that misses its pattern names the field and the pattern", "enforce",
			[]enforce.Call{{Tool: "file_write", Arguments: []byte(`{"path":"/etc/passwd"}`)}},
			want{decision: aip.DecisionBlock, code: aip.CodeForbidden,
				violations: []enforce.Violation{{Type: aip.ViolationArgumentValidation, Field: "path", Message: "Value does not match pattern: ^/allowed/.*"}}}},
		{"a protected path is blocked and its field named", "enforce",
			[]enforce.Call{{Tool: "read_file", Arguments: []byte(`{"path":"~/.ssh/id_rsa"}`)}},
			want{decision: aip.DecisionBlock, code: aip.CodeProtectedPath}},
		{"action ask asks", "enforce",
			[]enforce.Call{{Tool: "dangerous", Arguments: []byte(`{}`)}},
			want{decision: aip.DecisionAsk}},
		{"a rate limit is counted across checks", "enforce",
			[]enforce.Call{{Tool: "limited", Arguments: []byte(`{}`)}, {Tool: "limited", Arguments: []byte(`{}`)}},
			want{decision: aip.DecisionBlock, code: aip.CodeRateLimited}},
		{"request DLP blocks a secret in the arguments", "enforce",
			[]enforce.Call{{Tool: "read_file", Arguments: []byte(`{"path":"AKIAABCDEFGHIJKLMNOP"}`)}},
			want{aip.DecisionBlock, aip.CodeForbidden, "Sensitive data in arguments",
				[]enforce.Violation{{Type: aip.ViolationDLP, Message: "Sensitive data in arguments"}}}},
		{"monitor mode allows what it would block and lists the violation", "monitor",
			[]enforce.Call{{Tool: "delete_file", Arguments: []byte(`{}`)}},
			want{aip.DecisionAllow, 0, "Tool not in allowed_tools list",
				[]enforce.Violation{{Type: aip.ViolationToolNotAllowed, Message: "Tool not in allowed_tools list"}}}},
		{"monitor mode still enforces protected paths", "monitor",
			[]enforce.Call{{Tool: "read_file", Arguments: []byte(`{"path":"~/.ssh/id_rsa"}`)}},
			want{decision: aip.DecisionBlock, code: aip.CodeProtectedPath}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCore(t, strings.Replace(checkPolicy, "MODE", tc.mode, 1))
			var got enforce.Check
			for _, call := range tc.calls {
				got = c.Check(ctx, call)
			}
			if got.Decision != tc.want.decision || got.Code != tc.want.code {
				t.Fatalf("decision %q code %d (reason %q), want %q %d", got.Decision, got.Code, got.Reason, tc.want.decision, tc.want.code)
			}
			if tc.want.reason != "" && got.Reason != tc.want.reason {
				t.Errorf("reason %q, want %q", got.Reason, tc.want.reason)
			}
			if tc.want.violations != nil && !reflect.DeepEqual(got.Violations, tc.want.violations) {
				t.Errorf("violations %+v, want %+v", got.Violations, tc.want.violations)
			}
			if tc.want.code == aip.CodeProtectedPath && (len(got.Violations) != 1 || got.Violations[0].Type != aip.ViolationProtectedPath || got.Violations[0].Field != "path") {
				t.Errorf("violations %+v, want one protected_path on field path", got.Violations)
			}
			if len(got.Audit) == 0 {
				t.Fatal("no audit record")
			}
			for _, r := range got.Audit {
				if r.PolicyHash == "" || r.PolicyMode != tc.mode {
					t.Errorf("record without the policy's hash and mode: %+v", r)
				}
			}
		})
	}
}

func TestCheckValidatesAndConsumesTheToken(t *testing.T) {
	ctx := context.Background()
	c, err := enforce.New(enforce.Config{Policy: compile(t, strings.Replace(identityPolicy, "FAILOVER", "failover_mode: fail_closed", 1))})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tok, _, err := c.Identity().Issue(ctx)
	if err != nil {
		t.Fatal(err)
	}

	none := c.Check(ctx, enforce.Call{Tool: "echo", Arguments: []byte(`{}`)})
	if none.Code != aip.CodeTokenRequired {
		t.Fatalf("no token: code %d, want %d", none.Code, aip.CodeTokenRequired)
	}
	first := c.Check(ctx, enforce.Call{Tool: "echo", Arguments: []byte(`{}`), Token: tok})
	if first.Decision != aip.DecisionAllow || first.Token == nil {
		t.Fatalf("valid token: %+v", first)
	}
	if s := first.ExpiresIn(time.Now()); s <= 0 {
		t.Fatalf("expires_in %d, want > 0", s)
	}
	replay := c.Check(ctx, enforce.Call{Tool: "echo", Arguments: []byte(`{}`), Token: tok})
	if replay.Code != aip.CodeTokenInvalid || replay.TokenError != aip.TokenErrReplayDetected {
		t.Fatalf("replayed token: code %d token_error %q", replay.Code, replay.TokenError)
	}
	if replay.Token != nil {
		t.Fatal("a refused token's claims are reported as valid")
	}
}
