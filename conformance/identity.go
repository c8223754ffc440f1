package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/agentid/agentid/audit"
	"github.com/agentid/agentid/enforce"
	"github.com/agentid/agentid/identity"
	"github.com/agentid/agentid/policy"
	"github.com/agentid/agentid/proxy"
)

// The identity vectors run black-box through the real proxy too: the runner
// is a stdio client that obtains tokens with the proxy's own method
// (enforce.TokenMethod), presents them in params._meta, and reads decisions
// from the JSON-RPC answers. Time is an injected clock, so "wait: 4m" costs
// nothing. Two "processes" are two proxies whose identity managers share a
// signing key (as with keys.key_source: file) but not a binding.
//
// Conventions the vectors leave open (docs/decisions.md):
//   - a call whose input has no `token` key is made by a well-behaved client:
//     it fetches a fresh token first and presents it (tokens are single-use);
//     `token: null` and `token: ""` are sent as no token and an empty one;
//   - `${VAR}` names a captured token; one never captured (VALID_TOKEN) is a
//     freshly issued valid token.

// identityVector extends vector with the identity-only shapes.
type identityVector struct {
	Sequence []identityStep `json:"sequence"`
	Steps    []identityStep `json:"steps"`
	Policies []struct {
		Name    string `json:"name"`
		Content string `json:"content"`
	} `json:"policies"`
	PolicySequence []struct {
		Step     string            `json:"step"`
		Policy   string            `json:"policy"`
		Input    *input            `json:"input"`
		Expected *identityExpected `json:"expected"`
	} `json:"policy_sequence"`
	TestType string            `json:"test_type"`
	Expected *identityExpected `json:"expected"`
}

// identityStep is one entry of a vector's `sequence` (which waits) or
// `steps` (which may name a process).
type identityStep struct {
	Process  string            `json:"process"`
	Action   string            `json:"action"`
	Wait     string            `json:"wait"`
	Input    *input            `json:"input"`
	Capture  map[string]string `json:"capture"`
	Expected *identityExpected `json:"expected"`
}

type identityExpected struct {
	expected
	TokenError       string         `json:"token_error"`
	TokenGenerated   *bool          `json:"token_generated"`
	TokenFields      []string       `json:"token_fields"`
	Token            map[string]any `json:"token"`
	TokenID          string         `json:"token_id"`
	SessionPreserved *bool          `json:"session_preserved"`
	SessionID        string         `json:"session_id"`
	HashPolicyV1     string         `json:"hash_policy_v1"`
	HashPolicyV2     string         `json:"hash_policy_v2"`
}

// agent is one proxy process with its identity manager, seen from its client.
type agent struct {
	core  *enforce.Core
	px    *proxy.Proxy
	mgr   *identity.Manager // nil when the policy does not enable identity
	conv  *conversation
	tool  string
	clock *identityClock
}

type identityClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *identityClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *identityClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// loadVectorPolicy parses a vector policy the way `agentid proxy` would.
func loadVectorPolicy(doc string) (*enforce.Policy, error) {
	p, _, err := policy.Parse([]byte(doc))
	if err != nil {
		return nil, fmt.Errorf("policy does not load: %w", err)
	}
	p.Path = "/etc/agentid/policy.yaml"
	return enforce.Compile(p, enforce.LoadOptions{HomeDir: "/home/conformance", WorkDir: "/home/conformance"})
}

// startAgent starts a proxy for the policy. keys and binding are shared or
// varied to model a second process.
func startAgent(ctx context.Context, doc string, clock *identityClock, keys *identity.KeySet, binding *identity.Binding) (*agent, error) {
	compiled, err := loadVectorPolicy(doc)
	if err != nil {
		return nil, err
	}
	p := compiled.Policy
	a := &agent{clock: clock, tool: "test_tool"}
	if len(p.Spec.AllowedTools) > 0 {
		a.tool = p.Spec.AllowedTools[0]
	}
	a.core, err = enforce.New(enforce.Config{Policy: compiled, Now: clock.Now,
		Identity: identity.Config{Keys: keys, Binding: binding}})
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	a.mgr = a.core.Identity()
	a.px = proxy.New(proxy.Config{Core: a.core, Audit: audit.Discard()})
	a.conv = startConversation(ctx, a.px, "ok")
	return a, nil
}

func (a *agent) close() {
	a.conv.close()
	a.core.Close()
}

// reload installs a new policy, as SIGHUP does in `agentid proxy`.
func (a *agent) reload(doc string) error {
	compiled, err := loadVectorPolicy(doc)
	if err != nil {
		return err
	}
	return a.core.SetPolicy(compiled)
}

// fetchToken asks the proxy for a fresh token; "" when identity is off.
func (a *agent) fetchToken(ctx context.Context) (string, error) {
	resp, err := a.conv.request(ctx, map[string]any{"jsonrpc": "2.0", "id": "token", "method": enforce.TokenMethod})
	if err != nil {
		return "", err
	}
	if resp.err != nil {
		if resp.err.Code == -32601 {
			return "", nil
		}
		return "", fmt.Errorf("%s: %d %s", enforce.TokenMethod, resp.err.Code, resp.err.Message)
	}
	var r struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(resp.result, &r); err != nil || r.Token == "" {
		return "", fmt.Errorf("%s answered %s", enforce.TokenMethod, resp.raw)
	}
	return r.Token, nil
}

// callWith sends a tools/call carrying token (absent when nil).
func (a *agent) callWith(ctx context.Context, in *input, token *string) (*response, error) {
	tool := a.tool
	var args json.RawMessage
	method := "tools/call"
	if in != nil {
		if in.Tool != nil {
			tool = *in.Tool
		}
		args = in.Args
		if in.Method != "" {
			method = in.Method
		}
	}
	params := map[string]any{"name": tool}
	if args != nil {
		params["arguments"] = args
	}
	if token != nil {
		params["_meta"] = map[string]any{enforce.TokenMetaKey: *token}
	}
	return a.conv.request(ctx, map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
}

var varRef = regexp.MustCompile(`^\$\{([A-Za-z0-9_]+)\}$`)

// tokenFor decides what a call presents. fetched reports a token obtained
// from the proxy for this call.
func (a *agent) tokenFor(ctx context.Context, in *input, vars map[string]string) (token *string, fetched string, err error) {
	if in == nil || in.Token == nil {
		t, err := a.fetchToken(ctx)
		if err != nil || t == "" {
			return nil, "", err
		}
		return &t, t, nil
	}
	var v *string
	if err := json.Unmarshal(in.Token, &v); err != nil {
		return nil, "", fmt.Errorf("vector: token must be a string or null")
	}
	if v == nil {
		return nil, "", nil
	}
	if m := varRef.FindStringSubmatch(*v); m != nil {
		if t, ok := vars[m[1]]; ok {
			return &t, "", nil
		}
		t, err := a.fetchToken(ctx)
		if err != nil {
			return nil, "", err
		}
		return &t, t, nil
	}
	return v, "", nil
}

// runIdentityVector executes an identity-level vector.
func runIdentityVector(ctx context.Context, raw json.RawMessage, v *vector) (Status, string) {
	ctx, cancel := context.WithTimeout(ctx, vectorTimeout)
	defer cancel()
	var iv identityVector
	if err := json.Unmarshal(raw, &iv); err != nil {
		return Fail, fmt.Sprintf("vector: %v", err)
	}
	clock := &identityClock{now: time.Now().UTC().Truncate(time.Second)}
	switch {
	case len(iv.Policies) > 0:
		return runPolicyHashes(iv)
	case len(iv.PolicySequence) > 0:
		return runPolicySequence(ctx, iv, clock)
	case len(iv.Steps) > 0:
		return runSteps(ctx, v, iv, clock)
	case len(iv.Sequence) > 0:
		return runSequence(ctx, v, iv, clock)
	case iv.TestType == "context_change":
		return runContextChange(ctx, v, clock)
	case v.Input != nil:
		return runSingle(ctx, v, iv, clock)
	}
	return Fail, "vector has nothing to execute"
}

func runSingle(ctx context.Context, v *vector, iv identityVector, clock *identityClock) (Status, string) {
	a, err := startAgent(ctx, deref(v.Policy), clock, nil, nil)
	if err != nil {
		return Fail, err.Error()
	}
	defer a.close()
	token, fetched, err := a.tokenFor(ctx, v.Input, nil)
	if err != nil {
		return Fail, err.Error()
	}
	resp, err := a.callWith(ctx, v.Input, token)
	if err != nil {
		return Fail, err.Error()
	}
	var problems []string
	if iv.Expected != nil {
		problems = append(problems, checkCall(iv.Expected, resp)...)
		problems = append(problems, checkToken(ctx, a, iv.Expected, fetched, deref(v.Policy))...)
	}
	return verdict(problems)
}

// checkCall compares a call's answer with decision, error and token_error.
func checkCall(exp *identityExpected, resp *response) []string {
	var problems []string
	st, reason := check(&exp.expected, &input{}, resp, false, nil)
	if st == Fail {
		problems = append(problems, reason)
	}
	if exp.TokenError != "" {
		got := ""
		if resp.err != nil {
			got, _ = resp.err.Data["token_error"].(string)
		}
		if got != exp.TokenError {
			problems = append(problems, fmt.Sprintf("token_error %q, want %q", got, exp.TokenError))
		}
	}
	return problems
}

// checkToken compares the token the client obtained with token_generated,
// token_fields and token{...}.
func checkToken(ctx context.Context, a *agent, exp *identityExpected, token, policyDoc string) []string {
	var problems []string
	if exp.TokenGenerated != nil && (token != "") != *exp.TokenGenerated {
		problems = append(problems, fmt.Sprintf("token generated %v, want %v", token != "", *exp.TokenGenerated))
	}
	if len(exp.TokenFields) == 0 && len(exp.Token) == 0 {
		return problems
	}
	if token == "" {
		return append(problems, "no token was issued")
	}
	_, payload, err := identity.DecodeUnverified(token)
	if err != nil {
		return append(problems, fmt.Sprintf("token: %v", err))
	}
	var fields map[string]any
	_ = json.Unmarshal(payload, &fields)
	for _, f := range exp.TokenFields {
		if _, ok := fields[f]; !ok {
			problems = append(problems, fmt.Sprintf("token lacks %q", f))
		}
	}
	claims, err := identity.ParseUnverified(token)
	if err != nil {
		return append(problems, fmt.Sprintf("token: %v", err))
	}
	for k, want := range exp.Token {
		var ok bool
		switch k {
		case "version":
			ok = claims.Version == want
		case "agent_id":
			ok = claims.AgentID == want
		case "nonce_length":
			ok = float64(len(claims.Nonce)) == want
		case "nonce_unique":
			other, err := a.fetchToken(ctx)
			if err == nil {
				c2, err2 := identity.ParseUnverified(other)
				ok = err2 == nil && (c2.Nonce != claims.Nonce) == want
			}
		case "ttl_seconds":
			ok = claims.ExpiresAt.Sub(claims.IssuedAt).Seconds() == want
		case "policy_hash_length":
			ok = float64(len(claims.PolicyHash)) == want
		case "policy_hash_deterministic":
			p, err := loadVectorPolicy(policyDoc)
			if err == nil {
				h1 := p.Hash
				h2, _ := policy.HashCanonical([]byte(policyDoc))
				ok = (h1 == claims.PolicyHash && h2 == h1) == want
			}
		default:
			problems = append(problems, fmt.Sprintf("unknown token expectation %q", k))
			continue
		}
		if !ok {
			problems = append(problems, fmt.Sprintf("token %s: want %v", k, want))
		}
	}
	return problems
}

func runSequence(ctx context.Context, v *vector, iv identityVector, clock *identityClock) (Status, string) {
	a, err := startAgent(ctx, deref(v.Policy), clock, nil, nil)
	if err != nil {
		return Fail, err.Error()
	}
	defer a.close()
	vars := map[string]string{}
	symbols := map[string]string{} // "token-1" → token id
	var problems []string
	var firstSession string
	for i, step := range iv.Sequence {
		if step.Wait != "" {
			d, err := policy.ParseDuration(step.Wait)
			if err != nil {
				return Fail, fmt.Sprintf("step %d: wait: %v", i+1, err)
			}
			clock.advance(d)
		}
		token, _, err := a.tokenFor(ctx, step.Input, vars)
		if err != nil {
			return Fail, fmt.Sprintf("step %d: %v", i+1, err)
		}
		resp, err := a.callWith(ctx, step.Input, token)
		if err != nil {
			return Fail, fmt.Sprintf("step %d: %v", i+1, err)
		}
		var claims *identity.Claims
		if token != nil {
			claims, _ = identity.ParseUnverified(*token)
		}
		if claims != nil && firstSession == "" {
			firstSession = claims.SessionID
		}
		for what, name := range step.Capture {
			switch {
			case what == "token" && token != nil:
				vars[name] = *token
			case what == "session_id" && claims != nil:
				vars[name] = claims.SessionID
			default:
				return Fail, fmt.Sprintf("step %d: nothing to capture as %s", i+1, what)
			}
		}
		exp := step.Expected
		if exp == nil {
			continue
		}
		for _, p := range checkCall(exp, resp) {
			problems = append(problems, fmt.Sprintf("step %d: %s", i+1, p))
		}
		if exp.TokenID != "" || exp.SessionID != "" || exp.SessionPreserved != nil {
			if claims == nil {
				problems = append(problems, fmt.Sprintf("step %d: no token was used", i+1))
				continue
			}
		}
		if exp.TokenID != "" {
			if prev, ok := symbols[exp.TokenID]; ok && prev != claims.TokenID() {
				problems = append(problems, fmt.Sprintf("step %d: %s is a different token", i+1, exp.TokenID))
			}
			for sym, id := range symbols {
				if sym != exp.TokenID && id == claims.TokenID() {
					problems = append(problems, fmt.Sprintf("step %d: %s is the same token as %s", i+1, exp.TokenID, sym))
				}
			}
			symbols[exp.TokenID] = claims.TokenID()
		}
		if exp.SessionPreserved != nil && (claims.SessionID == firstSession) != *exp.SessionPreserved {
			problems = append(problems, fmt.Sprintf("step %d: session preserved %v", i+1, claims.SessionID == firstSession))
		}
		if exp.SessionID != "" {
			want := exp.SessionID
			if m := varRef.FindStringSubmatch(want); m != nil {
				want = vars[m[1]]
			}
			if claims.SessionID != want {
				problems = append(problems, fmt.Sprintf("step %d: session %s, want %s", i+1, claims.SessionID, want))
			}
		}
	}
	return verdict(problems)
}

func runSteps(ctx context.Context, v *vector, iv identityVector, clock *identityClock) (Status, string) {
	agents := map[string]*agent{}
	var keys *identity.KeySet
	get := func(process string) (*agent, error) {
		if process == "" {
			process = "A"
		}
		if a, ok := agents[process]; ok {
			return a, nil
		}
		var binding *identity.Binding
		if len(agents) > 0 {
			// Another process: same host, policy and signing key, another
			// process id.
			b := identity.CurrentBinding("/etc/agentid/policy.yaml")
			b.ProcessID += len(agents)
			binding = &b
		}
		a, err := startAgent(ctx, deref(v.Policy), clock, keys, binding)
		if err != nil {
			return nil, err
		}
		if keys == nil && a.mgr != nil {
			keys = a.mgr.Keys()
		}
		agents[process] = a
		return a, nil
	}
	defer func() {
		for _, a := range agents {
			a.close()
		}
	}()
	vars := map[string]string{}
	var problems []string
	for i, step := range iv.Steps {
		a, err := get(step.Process)
		if err != nil {
			return Fail, err.Error()
		}
		switch step.Action {
		case "issue_token":
			t, err := a.fetchToken(ctx)
			if err != nil || t == "" {
				return Fail, fmt.Sprintf("step %d: no token issued: %v", i+1, err)
			}
			for _, name := range step.Capture {
				vars[name] = t
			}
		case "use_token", "replay_token":
			token, _, err := a.tokenFor(ctx, step.Input, vars)
			if err != nil {
				return Fail, fmt.Sprintf("step %d: %v", i+1, err)
			}
			resp, err := a.callWith(ctx, step.Input, token)
			if err != nil {
				return Fail, fmt.Sprintf("step %d: %v", i+1, err)
			}
			if step.Expected != nil {
				for _, p := range checkCall(step.Expected, resp) {
					problems = append(problems, fmt.Sprintf("step %d (%s): %s", i+1, step.Action, p))
				}
			}
		default:
			return Fail, fmt.Sprintf("step %d: unknown action %q", i+1, step.Action)
		}
	}
	return verdict(problems)
}

func runPolicySequence(ctx context.Context, iv identityVector, clock *identityClock) (Status, string) {
	var a *agent
	var token string
	var problems []string
	for i, step := range iv.PolicySequence {
		switch step.Step {
		case "issue_token":
			var err error
			if a, err = startAgent(ctx, step.Policy, clock, nil, nil); err != nil {
				return Fail, err.Error()
			}
			defer a.close()
			if token, err = a.fetchToken(ctx); err != nil || token == "" {
				return Fail, fmt.Sprintf("step %d: no token issued: %v", i+1, err)
			}
		case "change_policy":
			if a == nil {
				return Fail, "change_policy before issue_token"
			}
			if err := a.reload(step.Policy); err != nil {
				return Fail, fmt.Sprintf("step %d: reload: %v", i+1, err)
			}
		case "use_old_token":
			if a == nil {
				return Fail, "use_old_token before issue_token"
			}
			resp, err := a.callWith(ctx, step.Input, &token)
			if err != nil {
				return Fail, err.Error()
			}
			if step.Expected != nil {
				problems = append(problems, checkCall(step.Expected, resp)...)
			}
		default:
			return Fail, fmt.Sprintf("unknown policy_sequence step %q", step.Step)
		}
	}
	return verdict(problems)
}

func runPolicyHashes(iv identityVector) (Status, string) {
	hashes := make([]string, len(iv.Policies))
	for i, p := range iv.Policies {
		h, err := policy.HashCanonical([]byte(p.Content))
		if err != nil {
			return Fail, fmt.Sprintf("%s: %v", p.Name, err)
		}
		hashes[i] = h
	}
	for i := range hashes {
		for j := i + 1; j < len(hashes); j++ {
			if hashes[i] == hashes[j] {
				return Fail, fmt.Sprintf("%s and %s hash alike", iv.Policies[i].Name, iv.Policies[j].Name)
			}
		}
	}
	return Pass, ""
}

// runContextChange executes validation-060, which names what strict binding
// covers but gives no steps: a token is issued, then presented to a process
// that differs in exactly one bound field; each must be refused with
// binding_mismatch, and an unchanged context must accept it.
func runContextChange(ctx context.Context, v *vector, clock *identityClock) (Status, string) {
	a, err := startAgent(ctx, deref(v.Policy), clock, nil, nil)
	if err != nil {
		return Fail, err.Error()
	}
	defer a.close()
	base := identity.CurrentBinding("/etc/agentid/policy.yaml")
	variants := map[string]identity.Binding{"unchanged": base}
	pid := base
	pid.ProcessID++
	variants["process id"] = pid
	path := base
	path.PolicyPath = "/etc/agentid/other.yaml"
	variants["policy path"] = path
	host := base
	host.Hostname = "other-" + base.Hostname
	variants["hostname"] = host
	var problems []string
	for name, b := range variants {
		b := b
		other, err := startAgent(ctx, deref(v.Policy), clock, a.mgr.Keys(), &b)
		if err != nil {
			return Fail, err.Error()
		}
		token, err := a.fetchToken(ctx)
		if err != nil {
			other.close()
			return Fail, err.Error()
		}
		resp, err := other.callWith(ctx, nil, &token)
		other.close()
		if err != nil {
			return Fail, err.Error()
		}
		got := ""
		if resp.err != nil {
			got, _ = resp.err.Data["token_error"].(string)
		}
		want := "binding_mismatch"
		if name == "unchanged" {
			want = ""
		}
		if got != want {
			problems = append(problems, fmt.Sprintf("%s changed: token_error %q, want %q", name, got, want))
		}
	}
	return verdict(problems)
}

func verdict(problems []string) (Status, string) {
	if len(problems) > 0 {
		return Fail, strings.Join(problems, "; ")
	}
	return Pass, ""
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
