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
// from the JSON-RPC answers and identity events (TOKEN_ISSUED,
// TOKEN_ROTATED, ...) from the audit log, written as in `agentid proxy`
// (enforce.Config.Events). Time is an injected clock, so "wait: 4m" costs
// nothing. Two "processes" are two proxies whose identity managers share a
// signing key (as with keys.key_source: file) but not a binding.
//
// Conventions the vectors leave open (docs/decisions.md):
//   - a call whose input has no `token` key is made by a well-behaved client:
//     it fetches a fresh token first and presents it (tokens are single-use);
//     `token: null` and `token: ""` are sent as no token and an empty one;
//   - `${VAR}` names a captured token; one never captured (VALID_TOKEN) is a
//     freshly issued valid token.
//
// Where the runner defines or reinterprets part of a vector (validation-010's
// first step, identity-030's token ids, validation-060), the result says so
// (Result.RunnerDefined).

// identityVector is an identity-level vector. It has exactly one shape:
// input, sequence, steps, policies, policy_sequence or
// test_type: context_change.
type identityVector struct {
	ID          string         `json:"id"`
	Description string         `json:"description"`
	Note        string         `json:"note"`
	Policy      *string        `json:"policy"`
	TestType    string         `json:"test_type"`
	Input       *identityInput `json:"input"`
	// Expected is decoded by the shape that has one: singleExpected with
	// input, hash relations with policies.
	Expected       json.RawMessage `json:"expected"`
	Sequence       []sequenceStep  `json:"sequence"`
	Steps          []processStep   `json:"steps"`
	Policies       []namedPolicy   `json:"policies"`
	PolicySequence []policyStep    `json:"policy_sequence"`
}

// identityInput is one call of an identity vector.
type identityInput struct {
	Method string          `json:"method"`
	Tool   *string         `json:"tool"`
	Args   json.RawMessage `json:"args"`
	// Token: absent, the client fetches a fresh token and presents it;
	// null, no token; a string ("${VAR}" included), that token.
	Token json.RawMessage `json:"token"`
}

// tokenCallExpected are the expectations on one call of an identity vector.
type tokenCallExpected struct {
	callExpected
	TokenError string `json:"token_error"`
}

// singleExpected adds what a single call's token must look like.
type singleExpected struct {
	tokenCallExpected
	TokenGenerated *bool          `json:"token_generated"`
	TokenFields    []string       `json:"token_fields"`
	Token          map[string]any `json:"token"`
}

// sequenceExpected adds the token and session a sequence step ran with.
type sequenceExpected struct {
	tokenCallExpected
	TokenID          string `json:"token_id"`
	SessionPreserved *bool  `json:"session_preserved"`
	SessionID        string `json:"session_id"`
}

// sequenceStep is one entry of a vector's `sequence`: a call after a wait.
type sequenceStep struct {
	Action   string            `json:"action"`
	Wait     string            `json:"wait"`
	Input    *identityInput    `json:"input"`
	Capture  map[string]string `json:"capture"`
	Expected *sequenceExpected `json:"expected"`
}

// processStep is one entry of a vector's `steps`, which may name a process.
type processStep struct {
	Process  string             `json:"process"`
	Action   string             `json:"action"`
	Input    *identityInput     `json:"input"`
	Capture  map[string]string  `json:"capture"`
	Expected *tokenCallExpected `json:"expected"`
}

type namedPolicy struct {
	Name    string `json:"name"`
	Content string `json:"content"`
}

// policyStep is one entry of a vector's `policy_sequence`.
type policyStep struct {
	Step     string             `json:"step"`
	Policy   string             `json:"policy"`
	Input    *identityInput     `json:"input"`
	Expected *tokenCallExpected `json:"expected"`
}

// findings collects a vector's problems and what the runner defined for it.
type findings struct {
	problems []string
	defined  []string
	checked  int // expectations compared
}

func (f *findings) fail(format string, args ...any) {
	f.problems = append(f.problems, fmt.Sprintf(format, args...))
}

func (f *findings) add(prefix string, problems []string) {
	for _, p := range problems {
		f.problems = append(f.problems, prefix+p)
	}
}

// define records that the runner defined or reinterpreted part of what it
// checked, and why.
func (f *findings) define(why string) {
	for _, d := range f.defined {
		if d == why {
			return
		}
	}
	f.defined = append(f.defined, why)
}

func (f *findings) outcome() outcome {
	o := outcome{status: Pass, runnerDefined: strings.Join(f.defined, "; ")}
	switch {
	case len(f.problems) > 0:
		o.status, o.reason = Fail, strings.Join(f.problems, "; ")
	case f.checked == 0:
		o.status, o.reason = Fail, "vector has no expectations to compare"
	}
	return o
}

// agent is one proxy process with its identity manager, seen from its client.
type agent struct {
	core         *enforce.Core
	px           *proxy.Proxy
	mgr          *identity.Manager // nil when the policy does not enable identity
	conv         *conversation
	tool         string
	requireToken bool
	clock        *identityClock
	log          *syncBuffer
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

// startAgent starts a proxy for the policy, wired as `agentid proxy` wires
// it (identity events go to the audit log). keys and binding are shared or
// varied to model a second process.
func startAgent(ctx context.Context, doc string, clock *identityClock, keys *identity.KeySet, binding *identity.Binding) (*agent, error) {
	compiled, err := loadVectorPolicy(doc)
	if err != nil {
		return nil, err
	}
	p := compiled.Policy
	a := &agent{clock: clock, tool: "test_tool", log: &syncBuffer{}}
	if len(p.Spec.AllowedTools) > 0 {
		a.tool = p.Spec.AllowedTools[0]
	}
	a.requireToken = p.IdentityConfig().Enabled && p.IdentityConfig().RequireToken
	auditLog := audit.New(a.log)
	a.core, err = enforce.New(enforce.Config{Policy: compiled, Now: clock.Now,
		Identity: identity.Config{Keys: keys, Binding: binding},
		Events:   func(r audit.Record) { _ = auditLog.Log(r) }})
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	a.mgr = a.core.Identity()
	a.px = proxy.New(proxy.Config{Core: a.core, Audit: auditLog})
	a.conv = startConversation(ctx, a.px, "ok")
	return a, nil
}

func (a *agent) close() {
	a.conv.close()
	a.core.Close()
}

// records returns the agent's audit log so far.
func (a *agent) records() []map[string]any { return auditRecords(a.log.Bytes()) }

// reload installs a new policy, as SIGHUP does in `agentid proxy`.
func (a *agent) reload(doc string) error {
	compiled, err := loadVectorPolicy(doc)
	if err != nil {
		return err
	}
	if err := a.core.SetPolicy(compiled); err != nil {
		return err
	}
	a.requireToken = compiled.Policy.IdentityConfig().RequireToken
	return nil
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

// call sends a tools/call carrying token (absent when nil) and returns the
// answer and the audit records written for it.
func (a *agent) call(ctx context.Context, in *identityInput, token *string) (*response, []map[string]any, error) {
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
	before := len(a.records())
	resp, err := a.conv.request(ctx, map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	if err != nil {
		return nil, nil, err
	}
	return resp, a.records()[before:], nil
}

var varRef = regexp.MustCompile(`^\$\{([A-Za-z0-9_]+)\}$`)

// tokenFor decides what a call presents. fetched reports a token obtained
// from the proxy for this call.
func (a *agent) tokenFor(ctx context.Context, in *identityInput, vars map[string]string) (token *string, fetched string, err error) {
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

// noteSuppliedToken records, when a call of the vector gives no token under
// require_token: true, that the runner's client supplies one. Read
// literally such a call is refused with -32008 (validation-001); the
// vectors that do this (validation-010) mean a client that has a token.
func (a *agent) noteSuppliedToken(f *findings, where string, in *identityInput) {
	if a.requireToken && (in == nil || in.Token == nil) {
		f.define(fmt.Sprintf("input: %s gives no token under require_token: true, which read literally is refused with -32008 (validation-001); the runner's client fetches a token and presents it", where))
	}
}

// shapes lists the executable shapes a vector has.
func (iv *identityVector) shapes() []string {
	var s []string
	if iv.Input != nil {
		s = append(s, "input")
	}
	if iv.Sequence != nil {
		s = append(s, "sequence")
	}
	if iv.Steps != nil {
		s = append(s, "steps")
	}
	if iv.Policies != nil {
		s = append(s, "policies")
	}
	if iv.PolicySequence != nil {
		s = append(s, "policy_sequence")
	}
	if iv.TestType == "context_change" {
		s = append(s, "test_type: context_change")
	}
	return s
}

// runIdentityVector executes an identity-level vector.
func runIdentityVector(ctx context.Context, raw json.RawMessage) outcome {
	ctx, cancel := context.WithTimeout(ctx, vectorTimeout)
	defer cancel()
	var iv identityVector
	if err := decodeStrict(raw, &iv, ""); err != nil {
		return failed("vector: %v", err)
	}
	shapes := iv.shapes()
	switch {
	case len(shapes) == 0:
		return failed("vector has nothing to execute (no input, sequence, steps, policies, policy_sequence or test_type: context_change)")
	case len(shapes) > 1:
		return failed("vector combines %s; the runner executes one of them", strings.Join(shapes, " and "))
	}
	shape := shapes[0]
	switch iv.TestType {
	case "", "context_change":
	case "cross_process", "same_process", "replay":
		if shape != "steps" {
			return failed("vector: test_type %q is only understood with steps", iv.TestType)
		}
	default:
		return failed("vector: test_type %q is not understood", iv.TestType)
	}
	ownPolicies := shape == "policies" || shape == "policy_sequence"
	switch {
	case ownPolicies && iv.Policy != nil:
		return failed("vector: policy is not used with %s (its entries carry their policies)", shape)
	case !ownPolicies && iv.Policy == nil:
		return failed("vector: %s needs a policy", shape)
	case iv.Expected != nil && shape != "input" && shape != "policies":
		return failed("vector: a top-level expected is not used with %s", shape)
	}
	clock := &identityClock{now: time.Now().UTC().Truncate(time.Second)}
	switch shape {
	case "policies":
		return runPolicyHashes(ctx, &iv, clock)
	case "policy_sequence":
		return runPolicySequence(ctx, &iv, clock)
	case "steps":
		return runSteps(ctx, &iv, clock)
	case "sequence":
		return runSequence(ctx, &iv, clock)
	case "input":
		return runSingle(ctx, &iv, clock)
	}
	return runContextChange(ctx, &iv, clock)
}

func runSingle(ctx context.Context, iv *identityVector, clock *identityClock) outcome {
	var exp singleExpected
	if iv.Expected == nil {
		return failed("vector has no expected section")
	}
	if err := decodeStrict(iv.Expected, &exp, "expected"); err != nil {
		return failed("vector: %v", err)
	}
	a, err := startAgent(ctx, deref(iv.Policy), clock, nil, nil)
	if err != nil {
		return failed("%v", err)
	}
	defer a.close()
	var f findings
	a.noteSuppliedToken(&f, "the call", iv.Input)
	token, fetched, err := a.tokenFor(ctx, iv.Input, nil)
	if err != nil {
		return failed("%v", err)
	}
	resp, records, err := a.call(ctx, iv.Input, token)
	if err != nil {
		return failed("%v", err)
	}
	f.checked++
	f.add("", checkCall(&exp.tokenCallExpected, resp, records))
	f.add("", checkToken(ctx, a, &exp, fetched, deref(iv.Policy)))
	return f.outcome()
}

// checkCall compares a call's answer with decision, error and token_error.
func checkCall(exp *tokenCallExpected, resp *response, records []map[string]any) []string {
	problems := check(&exp.callExpected, resp, false, records)
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
func checkToken(ctx context.Context, a *agent, exp *singleExpected, token, policyDoc string) []string {
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
	for _, k := range sortedKeys(exp.Token) {
		want := exp.Token[k]
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
			// A second proxy loading the same document issues tokens with
			// the same hash, and it is the document's policy hash.
			b, err := startAgent(ctx, policyDoc, a.clock, nil, nil)
			if err == nil {
				other, err := b.fetchToken(ctx)
				b.close()
				c2, err2 := identity.ParseUnverified(other)
				h, err3 := policy.HashCanonical([]byte(policyDoc))
				if err == nil && err2 == nil && err3 == nil {
					ok = (c2.PolicyHash == claims.PolicyHash && h == claims.PolicyHash) == want
				}
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

// currentTokens maps every token id in an audit log to the id of the
// session's current token it was issued under (docs/identity.md, "What
// rotation means with single-use tokens"): a session's first TOKEN_ISSUED
// and each TOKEN_ROTATED's new_token_id start a current token; the other
// TOKEN_ISSUED tokens belong to the current token of their session.
func currentTokens(records []map[string]any) map[string]string {
	of := map[string]string{}
	current := map[string]string{} // session id → current token id
	for _, r := range records {
		session, _ := r["session_id"].(string)
		switch r["event"] {
		case identity.EventTokenIssued:
			id, _ := r["token_id"].(string)
			if current[session] == "" {
				current[session] = id
			}
			of[id] = current[session]
		case identity.EventTokenRotated:
			id, _ := r["new_token_id"].(string)
			current[session] = id
			of[id] = id
		}
	}
	return of
}

// tokenIDReading is what `token_id: token-N` means with single-use tokens.
const tokenIDReading = "reading: token_id names the session's current token (TOKEN_ISSUED/TOKEN_ROTATED in the audit log), not the token of the call, since every call presents a fresh single-use token"

func runSequence(ctx context.Context, iv *identityVector, clock *identityClock) outcome {
	a, err := startAgent(ctx, deref(iv.Policy), clock, nil, nil)
	if err != nil {
		return failed("%v", err)
	}
	defer a.close()
	vars := map[string]string{}
	symbols := map[string]string{} // "token-1" → current token id
	var f findings
	var firstSession string
	for i, step := range iv.Sequence {
		n := i + 1
		if step.Action != "" && step.Action != "call" {
			return failed("step %d: action %q is not understood in a sequence", n, step.Action)
		}
		if step.Wait != "" {
			d, err := policy.ParseDuration(step.Wait)
			if err != nil {
				return failed("step %d: wait: %v", n, err)
			}
			clock.advance(d)
		}
		a.noteSuppliedToken(&f, fmt.Sprintf("step %d", n), step.Input)
		token, _, err := a.tokenFor(ctx, step.Input, vars)
		if err != nil {
			return failed("step %d: %v", n, err)
		}
		resp, records, err := a.call(ctx, step.Input, token)
		if err != nil {
			return failed("step %d: %v", n, err)
		}
		var claims *identity.Claims
		if token != nil {
			claims, _ = identity.ParseUnverified(*token)
		}
		if claims != nil && firstSession == "" {
			firstSession = claims.SessionID
		}
		for _, what := range sortedKeys(step.Capture) {
			name := step.Capture[what]
			switch {
			case what == "token" && token != nil:
				vars[name] = *token
			case what == "session_id" && claims != nil:
				vars[name] = claims.SessionID
			case what != "token" && what != "session_id":
				return failed("step %d: capture.%s is not understood", n, what)
			default:
				return failed("step %d: nothing to capture as %s", n, what)
			}
		}
		exp := step.Expected
		if exp == nil {
			continue
		}
		f.checked++
		prefix := fmt.Sprintf("step %d: ", n)
		f.add(prefix, checkCall(&exp.tokenCallExpected, resp, records))
		if exp.TokenID != "" || exp.SessionID != "" || exp.SessionPreserved != nil {
			if claims == nil {
				f.fail("step %d: no token was used", n)
				continue
			}
		}
		if exp.TokenID != "" {
			f.define(tokenIDReading)
			current, ok := currentTokens(a.records())[claims.TokenID()]
			if !ok {
				f.fail("step %d: token %s is not in the audit log", n, claims.TokenID())
				continue
			}
			if prev, ok := symbols[exp.TokenID]; ok && prev != current {
				f.fail("step %d: %s is a different token (the current token was replaced)", n, exp.TokenID)
			}
			for _, sym := range sortedKeys(symbols) {
				if sym != exp.TokenID && symbols[sym] == current {
					f.fail("step %d: %s is the same token as %s (the current token was not replaced)", n, exp.TokenID, sym)
				}
			}
			symbols[exp.TokenID] = current
		}
		if exp.SessionPreserved != nil && (claims.SessionID == firstSession) != *exp.SessionPreserved {
			f.fail("step %d: session preserved %v", n, claims.SessionID == firstSession)
		}
		if exp.SessionID != "" {
			want := exp.SessionID
			if m := varRef.FindStringSubmatch(want); m != nil {
				v, ok := vars[m[1]]
				if !ok {
					f.fail("step %d: session_id names %s, which no step captured", n, m[1])
					continue
				}
				want = v
			}
			if claims.SessionID != want {
				f.fail("step %d: session %s, want %s", n, claims.SessionID, want)
			}
		}
	}
	return f.outcome()
}

func runSteps(ctx context.Context, iv *identityVector, clock *identityClock) outcome {
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
		a, err := startAgent(ctx, deref(iv.Policy), clock, keys, binding)
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
	var f findings
	for i, step := range iv.Steps {
		n := i + 1
		a, err := get(step.Process)
		if err != nil {
			return failed("%v", err)
		}
		switch step.Action {
		case "issue_token":
			if step.Input != nil || step.Expected != nil {
				return failed("step %d: issue_token takes no input or expected", n)
			}
			t, err := a.fetchToken(ctx)
			if err != nil || t == "" {
				return failed("step %d: no token issued: %v", n, err)
			}
			for _, what := range sortedKeys(step.Capture) {
				if what != "token" {
					return failed("step %d: capture.%s is not understood with issue_token", n, what)
				}
				vars[step.Capture[what]] = t
			}
		case "use_token", "replay_token":
			if step.Capture != nil {
				return failed("step %d: capture is not understood with %s", n, step.Action)
			}
			a.noteSuppliedToken(&f, fmt.Sprintf("step %d", n), step.Input)
			token, _, err := a.tokenFor(ctx, step.Input, vars)
			if err != nil {
				return failed("step %d: %v", n, err)
			}
			resp, records, err := a.call(ctx, step.Input, token)
			if err != nil {
				return failed("step %d: %v", n, err)
			}
			if step.Expected != nil {
				f.checked++
				f.add(fmt.Sprintf("step %d (%s): ", n, step.Action), checkCall(step.Expected, resp, records))
			}
		default:
			return failed("step %d: unknown action %q", n, step.Action)
		}
	}
	return f.outcome()
}

func runPolicySequence(ctx context.Context, iv *identityVector, clock *identityClock) outcome {
	var a *agent
	defer func() {
		if a != nil {
			a.close()
		}
	}()
	var issued string
	vars := map[string]string{}
	var f findings
	for i, step := range iv.PolicySequence {
		n := i + 1
		if step.Step != "use_old_token" && (step.Input != nil || step.Expected != nil) {
			return failed("step %d: %s takes no input or expected", n, step.Step)
		}
		if (step.Step == "use_old_token") == (step.Policy != "") {
			if step.Policy != "" {
				return failed("step %d: use_old_token takes no policy", n)
			}
			return failed("step %d: %s needs a policy", n, step.Step)
		}
		switch step.Step {
		case "issue_token":
			if a != nil {
				return failed("step %d: a second issue_token is not understood", n)
			}
			var err error
			if a, err = startAgent(ctx, step.Policy, clock, nil, nil); err != nil {
				return failed("%v", err)
			}
			if issued, err = a.fetchToken(ctx); err != nil || issued == "" {
				return failed("step %d: no token issued: %v", n, err)
			}
			vars[fmt.Sprintf("token_from_step_%d", n)] = issued
		case "change_policy":
			if a == nil {
				return failed("change_policy before issue_token")
			}
			if err := a.reload(step.Policy); err != nil {
				return failed("step %d: reload: %v", n, err)
			}
		case "use_old_token":
			if a == nil {
				return failed("use_old_token before issue_token")
			}
			token := issued
			if step.Input != nil && step.Input.Token != nil {
				var ref string
				if json.Unmarshal(step.Input.Token, &ref) != nil {
					return failed("step %d: input.token must be a string", n)
				}
				if m := varRef.FindStringSubmatch(ref); m == nil || vars[m[1]] == "" {
					return failed("step %d: input.token %q names no token issued by an earlier step", n, ref)
				}
				token = vars[varRef.FindStringSubmatch(ref)[1]]
			}
			resp, records, err := a.call(ctx, step.Input, &token)
			if err != nil {
				return failed("%v", err)
			}
			if step.Expected != nil {
				f.checked++
				f.add(fmt.Sprintf("step %d: ", n), checkCall(step.Expected, resp, records))
			}
		default:
			return failed("unknown policy_sequence step %q", step.Step)
		}
	}
	return f.outcome()
}

// hashRelation matches identity-041's expectations: the hash of one policy
// is "different_from_<other>" or "same_as_<other>".
var hashRelation = regexp.MustCompile(`^(different_from|same_as)_(.+)$`)

// runPolicyHashes executes a `policies` vector through the proxy: it starts
// with the first policy, reloads each next one (as SIGHUP does), and reads
// the policy_hash of a token the proxy issues under each. expected relates
// the hashes: hash_<policy> (name with "-" as "_") is different_from_<ref>
// or same_as_<ref>, where <ref> is another policy's name, or its name
// without the "policy_" prefix (v2 for policy-v2).
func runPolicyHashes(ctx context.Context, iv *identityVector, clock *identityClock) outcome {
	if iv.Expected == nil {
		return failed("vector has no expected section")
	}
	var exp map[string]string
	if err := decodeStrict(iv.Expected, &exp, "expected"); err != nil {
		return failed("vector: expected must map hash_<policy> to a relation: %v", err)
	}
	if len(iv.Policies) == 0 {
		return failed("vector has no policies")
	}
	key := func(name string) string { return "hash_" + strings.ReplaceAll(name, "-", "_") }
	hashes := map[string]string{}
	var a *agent
	defer func() {
		if a != nil {
			a.close()
		}
	}()
	for i, p := range iv.Policies {
		if p.Name == "" {
			return failed("policies[%d] has no name", i)
		}
		if _, dup := hashes[key(p.Name)]; dup {
			return failed("two policies are named %s", key(p.Name))
		}
		var err error
		if i == 0 {
			a, err = startAgent(ctx, p.Content, clock, nil, nil)
		} else {
			err = a.reload(p.Content)
		}
		if err != nil {
			return failed("%s: %v", p.Name, err)
		}
		tok, err := a.fetchToken(ctx)
		if err != nil {
			return failed("%s: %v", p.Name, err)
		}
		if tok == "" {
			return failed("%s: identity is not enabled, so the proxy issues no token to read the policy hash from", p.Name)
		}
		c, err := identity.ParseUnverified(tok)
		if err != nil {
			return failed("%s: token: %v", p.Name, err)
		}
		hashes[key(p.Name)] = c.PolicyHash
	}
	var f findings
	for _, k := range sortedKeys(exp) {
		got, ok := hashes[k]
		if !ok {
			f.fail("expected.%s names no policy of the vector", k)
			continue
		}
		m := hashRelation.FindStringSubmatch(exp[k])
		if m == nil {
			f.fail("expected.%s: %q is not understood (want different_from_<policy> or same_as_<policy>)", k, exp[k])
			continue
		}
		ref := strings.ReplaceAll(m[2], "-", "_")
		other, ok := hashes["hash_"+ref]
		if !ok {
			other, ok = hashes["hash_policy_"+ref]
		}
		if !ok {
			f.fail("expected.%s: %q names no policy of the vector", k, exp[k])
			continue
		}
		f.checked++
		if same := got == other; same != (m[1] == "same_as") {
			rel := "different from"
			if same {
				rel = "the same as"
			}
			f.fail("%s is %s, want %s: the proxy's tokens carry %s and %s", k, rel, exp[k], got, other)
		}
	}
	return f.outcome()
}

// contextChangeExpectation says what the runner defines for validation-060.
const contextChangeExpectation = "expectation: the vector names what strict binding covers but has no steps or expected section; the runner presents a token to proxies that differ from the issuer in exactly one bound field (process id, policy path, hostname) and expects binding_mismatch, and to an unchanged one and expects acceptance"

// runContextChange executes validation-060: a token is issued, then
// presented to a process that differs in exactly one bound field; each must
// be refused with binding_mismatch, and an unchanged context must accept it.
func runContextChange(ctx context.Context, iv *identityVector, clock *identityClock) outcome {
	a, err := startAgent(ctx, deref(iv.Policy), clock, nil, nil)
	if err != nil {
		return failed("%v", err)
	}
	defer a.close()
	if a.mgr == nil {
		return failed("identity is not enabled in the policy")
	}
	f := findings{defined: []string{contextChangeExpectation}}
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
	for _, name := range sortedKeys(variants) {
		b := variants[name]
		other, err := startAgent(ctx, deref(iv.Policy), clock, a.mgr.Keys(), &b)
		if err != nil {
			return failed("%v", err)
		}
		token, err := a.fetchToken(ctx)
		if err != nil {
			other.close()
			return failed("%v", err)
		}
		resp, _, err := other.call(ctx, nil, &token)
		other.close()
		if err != nil {
			return failed("%v", err)
		}
		got := ""
		if resp.err != nil {
			got, _ = resp.err.Data["token_error"].(string)
		}
		want := "binding_mismatch"
		if name == "unchanged" {
			want = ""
		}
		f.checked++
		if got != want {
			f.fail("%s changed: token_error %q, want %q", name, got, want)
		}
	}
	return f.outcome()
}

func verdict(problems []string) outcome {
	if len(problems) > 0 {
		return outcome{status: Fail, reason: strings.Join(problems, "; ")}
	}
	return outcome{status: Pass}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
