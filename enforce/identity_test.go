package enforce_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentid/agentid/aip"
	"github.com/agentid/agentid/enforce"
	"github.com/agentid/agentid/identity"
	"github.com/agentid/agentid/policy"
)

// downNonces is a nonce store that cannot be reached.
type downNonces struct{}

func (downNonces) CheckAndRecord(context.Context, string, time.Duration) (bool, error) {
	return false, errors.New("connection refused")
}
func (downNonces) Close() error { return nil }

const identityPolicy = `apiVersion: aip.io/v1alpha2
kind: AgentPolicy
metadata: {name: ident}
spec:
  allowed_tools: [echo]
  identity:
    enabled: true
    require_token: true
  server:
    FAILOVER
`

func TestNonceStoreFailureAppliesFailoverMode(t *testing.T) {
	for _, tc := range []struct {
		failover string
		want     int
	}{
		{"failover_mode: fail_closed", aip.CodeForbidden},
		{"failover_mode: fail_open", 0},
		{"failover_mode: local_policy", aip.CodeForbidden}, // no local state can tell a replay
	} {
		t.Run(tc.failover, func(t *testing.T) {
			p, _, err := policy.Parse([]byte(strings.Replace(identityPolicy, "FAILOVER", tc.failover, 1)))
			if err != nil {
				t.Fatal(err)
			}
			p.Path = "/etc/agentid/policy.yaml"
			compiled, err := enforce.Compile(p, enforce.LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			c, err := enforce.New(enforce.Config{Policy: compiled, Identity: identity.Config{Nonces: downNonces{}}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			s := enforce.NewSession()
			v := c.FromClient(context.Background(), s, []byte(`{"jsonrpc":"2.0","id":"t","method":"aip.io/token"}`))
			var issued struct {
				Result struct {
					Token string `json:"token"`
				} `json:"result"`
			}
			if err := json.Unmarshal(v.ToClient, &issued); err != nil || issued.Result.Token == "" {
				t.Fatalf("no token: %s", v.ToClient)
			}
			line := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{},"_meta":{"aip.io/token":"` + issued.Result.Token + `"}}}`
			v = c.FromClient(context.Background(), s, []byte(line))
			got := 0
			if v.ToServer == nil {
				got = errorCode(t, v.ToClient)
			}
			if got != tc.want {
				t.Fatalf("code %d, want %d (%s)", got, tc.want, v.ToClient)
			}
			if got != 0 && !strings.Contains(string(v.ToClient), "validation_unavailable") {
				t.Fatalf("refusal does not say validation_unavailable: %s", v.ToClient)
			}
			if strings.Contains(string(v.ToServer), issued.Result.Token) {
				t.Fatal("the token was forwarded")
			}
			var events []string
			for _, r := range v.Audit {
				events = append(events, r.Event)
			}
			want := enforce.EventValidationUnavailable
			if tc.want == 0 {
				want = enforce.EventFailover
			}
			if !strings.Contains(strings.Join(events, ","), want) {
				t.Fatalf("audit events %v, want %s", events, want)
			}
		})
	}
}

func compile(t *testing.T, yaml string) *enforce.Policy {
	t.Helper()
	p, _, err := policy.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	p.Path = "/etc/agentid/policy.yaml"
	c, err := enforce.Compile(p, enforce.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTheIdentitySessionFollowsReloads(t *testing.T) {
	on := strings.Replace(identityPolicy, "FAILOVER", "failover_mode: fail_closed", 1)
	off := strings.Replace(strings.Replace(on, "enabled: true", "enabled: false", 1), "require_token: true", "require_token: false", 1)
	c, err := enforce.New(enforce.Config{Policy: compile(t, off)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Identity() != nil {
		t.Fatal("identity session without identity.enabled")
	}
	if err := c.SetPolicy(compile(t, on)); err != nil {
		t.Fatal(err)
	}
	m := c.Identity()
	if m == nil {
		t.Fatal("a reload that turns identity on started no session")
	}
	s := enforce.NewSession()
	if v := c.FromClient(context.Background(), s, call(1, "echo", `{}`)); errorCode(t, v.ToClient) != aip.CodeTokenRequired {
		t.Fatalf("require_token after the reload: %s", v.ToClient)
	}
	if err := c.SetPolicy(compile(t, on)); err != nil {
		t.Fatal(err)
	}
	if c.Identity() != m {
		t.Fatal("a reload that keeps identity on replaced the session")
	}
	if err := c.SetPolicy(compile(t, off)); err != nil {
		t.Fatal(err)
	}
	if c.Identity() != nil {
		t.Fatal("a reload that turns identity off kept the session")
	}
	if v := c.FromClient(context.Background(), s, call(2, "echo", `{}`)); v.ToServer == nil {
		t.Fatalf("tokens still required after identity was turned off: %s", v.ToClient)
	}
}

func TestTheRevocationFileAppliesToASessionAReloadStarts(t *testing.T) {
	off := compile(t, "apiVersion: aip.io/v1alpha2\nkind: AgentPolicy\nmetadata: {name: ident}\nspec:\n  allowed_tools: [echo]\n")
	c, err := enforce.New(enforce.Config{Policy: off})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	path := filepath.Join(t.TempDir(), "revoked.json")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.WatchRevocationFile(ctx, path, 10*time.Millisecond, nil)

	if err := c.SetPolicy(compile(t, strings.Replace(identityPolicy, "FAILOVER", "failover_mode: fail_closed", 1))); err != nil {
		t.Fatal(err)
	}
	session := c.Identity().SessionID()
	if err := os.WriteFile(path, []byte(`{"revoked_sessions":["`+session+`"],"revoked_tokens":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		tok, _, err := c.Identity().Issue(ctx)
		if err != nil {
			t.Fatal(err)
		}
		res := c.Check(ctx, enforce.Call{Tool: "echo", Arguments: []byte(`{}`), Token: tok})
		if res.Code == aip.CodeTokenRevoked {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the session a reload started is never revoked by the file: %+v", res)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
