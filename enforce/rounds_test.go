package enforce_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/agentid/agentid/aip"
	"github.com/agentid/agentid/approve"
	"github.com/agentid/agentid/enforce"
)

// Issue #9 family 13: the rounds of one multi-round-trip call (MCP
// 2026-07-28: an input_required result, retried with inputResponses and the
// request state) share the decision on the first round.

const roundsPolicy = `apiVersion: aip.io/v1alpha2
kind: AgentPolicy
metadata: {name: rounds}
spec:
  mode: MODE
  tool_rules:
    - tool: run
      rate_limit: 1/hour
    - tool: write_file
      action: ask
    - tool: deploy
      action: ask
      rate_limit: 1/hour
    - tool: echo
      action: allow
  dlp:
    scan_requests: true
    on_request_match: redact
    patterns:
      - {name: AWS Key, regex: "AKIA[A-Z0-9]{16}"}
`

func roundsCore(t *testing.T, mode string, clk *clock) *enforce.Core {
	t.Helper()
	return newCore(t, strings.Replace(roundsPolicy, "MODE", mode, 1), func(c *enforce.Config) { c.Now = clk.Now })
}

// inputRequired is an input_required result asking one elicitation, with
// the request state state ("" for none).
func inputRequired(state string) string {
	r := `{"resultType":"input_required","inputRequests":{"q":{"method":"elicitation/create","params":{"mode":"form","message":"Sure?","requestedSchema":{"type":"object","properties":{}}}}}`
	if state != "" {
		r += `,"requestState":` + quote(state)
	}
	return r + `}`
}

const completeResult = `{"resultType":"complete","content":[{"type":"text","text":"done"}]}`

// retry is the params members of a retry echoing state ("" for none).
func retry(state string) string {
	m := `"inputResponses":{"q":{"action":"accept","content":{}}}`
	if state != "" {
		m += `,"requestState":` + quote(state)
	}
	return m
}

func quote(s string) string { b, _ := json.Marshal(s); return string(b) }

// round is one request of a conversation and what the core must make of it.
type round struct {
	wait   time.Duration // the clock advances first
	tool   string
	args   string
	params string // members added to params: the retry's
	want   int    // 0: forwarded; otherwise the code answered
	asked  bool   // an approval was asked (and is given)
	answer string // the server's result for a forwarded call; "" is completeResult
}

// conversation drives rounds through one core and session, answering every
// forwarded call with its round's result.
type conversation struct {
	t   *testing.T
	c   *enforce.Core
	s   *enforce.Session
	clk *clock
	id  int
}

func newConversation(t *testing.T, c *enforce.Core, clk *clock) *conversation {
	return &conversation{t: t, c: c, s: enforce.NewSession(), clk: clk}
}

func (cv *conversation) line(r round) []byte {
	cv.id++
	params := `{"name":` + quote(r.tool) + `,"arguments":` + r.args
	if r.params != "" {
		params += "," + r.params
	}
	return []byte(`{"jsonrpc":"2.0","id":` + itoa(cv.id) + `,"method":"tools/call","params":` + params + `}}`)
}

// do decides r and, when it is forwarded, the server's answer; it returns
// the verdicts on the request and on the answer (zero when not forwarded).
func (cv *conversation) do(i int, r round) (req, resp enforce.Verdict) {
	t := cv.t
	t.Helper()
	cv.clk.advance(r.wait)
	ctx := context.Background()
	v := cv.c.FromClient(ctx, cv.s, cv.line(r))
	if asked := v.Approval != nil; asked != r.asked {
		t.Fatalf("round %d (%s): asked for approval = %v, want %v", i, r.tool, asked, r.asked)
	}
	if v.Approval != nil {
		v = cv.c.Resolve(v.Approval, approve.Approved)
	}
	if r.want != 0 {
		if v.ToServer != nil || v.ToClient == nil || errorCode(t, v.ToClient) != r.want {
			t.Fatalf("round %d (%s): forwarded %s, answered %s; want code %d", i, r.tool, v.ToServer, v.ToClient, r.want)
		}
		return v, enforce.Verdict{}
	}
	if v.ToServer == nil {
		t.Fatalf("round %d (%s): not forwarded; answered %s", i, r.tool, v.ToClient)
	}
	result := r.answer
	if result == "" {
		result = completeResult
	}
	resp = cv.c.FromServer(ctx, cv.s, []byte(`{"jsonrpc":"2.0","id":`+itoa(cv.id)+`,"result":`+result+`}`))
	if resp.ToClient == nil {
		t.Fatalf("round %d: the server's answer did not reach the client", i)
	}
	return v, resp
}

func (cv *conversation) run(rounds []round) {
	cv.t.Helper()
	for i, r := range rounds {
		cv.do(i, r)
	}
}

func TestTheRoundsOfOneCallShareItsFirstDecision(t *testing.T) {
	const ls, rm = `{"cmd":"ls"}`, `{"cmd":"rm -rf /"}`
	cases := []struct {
		name   string
		mode   string
		rounds []round
	}{
		{"a retry carrying the request state spends no second rate-limit unit", "enforce", []round{
			{tool: "run", args: ls, answer: inputRequired("s1")},
			{tool: "run", args: ls, params: retry("s1")},
			{tool: "run", args: ls, want: aip.CodeRateLimited}, // the limit still holds for a new call
		}},
		{"a retry after a result without request state spends no second unit", "enforce", []round{
			{tool: "run", args: ls, answer: inputRequired("")},
			{tool: "run", args: ls, params: retry("")},
			{tool: "run", args: ls, want: aip.CodeRateLimited},
		}},
		{"every round of a longer call shares the first decision", "enforce", []round{
			{tool: "run", args: ls, answer: inputRequired("s1")},
			{tool: "run", args: ls, params: retry("s1"), answer: inputRequired("s2")},
			{tool: "run", args: ls, params: retry("s2"), answer: inputRequired("")},
			{tool: "run", args: ls, params: retry("")},
			{tool: "run", args: ls, want: aip.CodeRateLimited},
		}},
		{"a result without resultType that asks for input is a round (servers of the 2025 era)", "enforce", []round{
			{tool: "run", args: ls, answer: `{"inputRequests":{"q":{"method":"roots/list"}},"requestState":"s1"}`},
			{tool: "run", args: ls, params: retry("s1")},
			{tool: "run", args: ls, want: aip.CodeRateLimited},
		}},
		{"a retry with only the request state (load shedding) continues the call", "enforce", []round{
			{tool: "run", args: ls, answer: `{"resultType":"input_required","requestState":"busy"}`},
			{tool: "run", args: ls, params: `"requestState":"busy"`},
		}},
		{"a retry of an approved call is not asked again", "enforce", []round{
			{tool: "write_file", args: `{"path":"/w"}`, asked: true, answer: inputRequired("s1")},
			{tool: "write_file", args: `{"path":"/w"}`, params: retry("s1"), answer: inputRequired("s2")},
			{tool: "write_file", args: `{"path":"/w"}`, params: retry("s2")},
			{tool: "write_file", args: `{"path":"/w"}`, asked: true}, // a new call is asked
		}},
		{"an approved rate-limited call is asked once and counted once", "enforce", []round{
			{tool: "deploy", args: `{}`, asked: true, answer: inputRequired("")},
			{tool: "deploy", args: `{}`, params: retry("")},
			{tool: "deploy", args: `{}`, want: aip.CodeRateLimited},
		}},
		{"the request state is matched as peers decode it", "enforce", []round{
			{tool: "run", args: ls, answer: inputRequired("a/b")},
			{tool: "run", args: ls, params: `"RequestState":"a\/b","inputResponses":{}`},
			{tool: "run", args: ls, want: aip.CodeRateLimited},
		}},
		{"the rounds bind in monitor mode too", "monitor", []round{
			{tool: "run", args: ls, answer: inputRequired("s1")},
			{tool: "run", args: ls, params: retry("s1")},
			{tool: "run", args: ls, want: aip.CodeRateLimited},
		}},

		{"a request state the core never saw is a new call", "enforce", []round{
			{tool: "run", args: ls},
			{tool: "run", args: ls, params: retry("forged"), want: aip.CodeRateLimited},
		}},
		{"a request state replayed after its retry is a new call", "enforce", []round{
			{tool: "run", args: ls, answer: inputRequired("s1")},
			{tool: "run", args: ls, params: retry("s1")},
			{tool: "run", args: ls, params: retry("s1"), want: aip.CodeRateLimited},
		}},
		{"a retry without request state after a result that had one is a new call", "enforce", []round{
			{tool: "run", args: ls, answer: inputRequired("s1")},
			{tool: "run", args: ls, params: retry(""), want: aip.CodeRateLimited},
		}},
		{"a round that waited past its time to live is a new call", "enforce", []round{
			{tool: "run", args: ls, answer: inputRequired("s1")},
			{wait: enforce.RoundTTL + time.Second, tool: "run", args: ls, params: retry("s1"), want: aip.CodeRateLimited},
		}},
		{"an approved call whose round expired is asked again", "enforce", []round{
			{tool: "write_file", args: `{}`, asked: true, answer: inputRequired("s1")},
			{wait: enforce.RoundTTL, tool: "write_file", args: `{}`, params: retry("s1"), asked: true},
		}},
		{"a call answered with an error leaves no round", "enforce", []round{
			{tool: "run", args: ls, answer: `{"isError":true,"content":[{"type":"text","text":"input_required"}]}`},
			{tool: "run", args: ls, params: retry(""), want: aip.CodeRateLimited},
		}},
		{"a complete result that carries inputRequests leaves no round", "enforce", []round{
			{tool: "run", args: ls, answer: `{"resultType":"complete","inputRequests":{},"requestState":"s1"}`},
			{tool: "run", args: ls, params: retry("s1"), want: aip.CodeRateLimited},
		}},
		{"a result that only mentions input_required leaves no round", "enforce", []round{
			{tool: "run", args: ls, answer: `{"resultType":"complete","content":[{"type":"text","text":"input_required"}],"requestState":"s1"}`},
			{tool: "run", args: ls, params: retry("s1"), want: aip.CodeRateLimited},
		}},

		{"a retry that changes the arguments is refused and uses the round up", "enforce", []round{
			{tool: "run", args: ls, answer: inputRequired("s1")},
			{tool: "run", args: rm, params: retry("s1"), want: aip.CodeForbidden},
			{tool: "run", args: ls, params: retry("s1"), want: aip.CodeRateLimited},
		}},
		{"a retry that names another tool is refused", "enforce", []round{
			{tool: "write_file", args: `{}`, asked: true, answer: inputRequired("s1")},
			{tool: "run", args: `{}`, params: retry("s1"), want: aip.CodeForbidden},
		}},
		{"a retry of an approved call with other arguments is refused, never asked", "enforce", []round{
			{tool: "write_file", args: `{"path":"/w"}`, asked: true, answer: inputRequired("s1")},
			{tool: "write_file", args: `{"path":"/etc/passwd"}`, params: retry("s1"), want: aip.CodeForbidden},
		}},
		{"arguments are compared byte for byte: a re-encoding is another call", "enforce", []round{
			{tool: "run", args: `{"a":1,"b":2}`, answer: inputRequired("s1")},
			{tool: "run", args: `{"b":2,"a":1}`, params: retry("s1"), want: aip.CodeForbidden},
		}},
		{"a mismatched retry is refused in monitor mode too", "monitor", []round{
			{tool: "run", args: ls, answer: inputRequired("s1")},
			{tool: "run", args: rm, params: retry("s1"), want: aip.CodeForbidden},
		}},
		{"a retry without request state and with other arguments is a new call", "enforce", []round{
			{tool: "run", args: ls, answer: inputRequired("")},
			{tool: "run", args: rm, params: retry(""), want: aip.CodeRateLimited},
		}},
	}
	t0 := time.Date(2026, 7, 28, 9, 0, 0, 0, time.UTC)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := &clock{now: t0}
			newConversation(t, roundsCore(t, tc.mode, clk), clk).run(tc.rounds)
		})
	}
}

func TestARoundIsBoundToItsSessionAndPolicy(t *testing.T) {
	t0 := time.Date(2026, 7, 28, 9, 0, 0, 0, time.UTC)
	t.Run("a request state from another session is a new call", func(t *testing.T) {
		clk := &clock{now: t0}
		c := roundsCore(t, "enforce", clk)
		newConversation(t, c, clk).run([]round{{tool: "write_file", args: `{}`, asked: true, answer: inputRequired("s1")}})
		newConversation(t, c, clk).run([]round{{tool: "write_file", args: `{}`, params: retry("s1"), asked: true}})
	})
	t.Run("a round decided under another policy is a new call", func(t *testing.T) {
		clk := &clock{now: t0}
		c := roundsCore(t, "enforce", clk)
		cv := newConversation(t, c, clk)
		cv.run([]round{{tool: "write_file", args: `{}`, asked: true, answer: inputRequired("s1")}})
		if err := c.SetPolicy(compile(t, strings.Replace(roundsPolicy, "MODE", "enforce", 1)+"  allowed_methods: [tools/call]\n")); err != nil {
			t.Fatal(err)
		}
		cv.run([]round{{tool: "write_file", args: `{}`, params: retry("s1"), asked: true}})
	})
	t.Run("a retry under a policy that now blocks the tool is blocked", func(t *testing.T) {
		clk := &clock{now: t0}
		c := roundsCore(t, "enforce", clk)
		cv := newConversation(t, c, clk)
		cv.run([]round{{tool: "echo", args: `{}`, answer: inputRequired("s1")}})
		if err := c.SetPolicy(compile(t, strings.NewReplacer("MODE", "enforce", "tool: echo\n      action: allow", "tool: echo\n      action: block").Replace(roundsPolicy))); err != nil {
			t.Fatal(err)
		}
		cv.run([]round{{tool: "echo", args: `{}`, params: retry("s1"), want: aip.CodeForbidden}})
	})
}

func TestAContinuedRoundStillPassesEveryOtherCheck(t *testing.T) {
	t0 := time.Date(2026, 7, 28, 9, 0, 0, 0, time.UTC)
	secret := "AKIA" + "ABCDEFGHIJKLMNOP"

	t.Run("the retry needs a fresh single-use token", func(t *testing.T) {
		clk := &clock{now: t0}
		c, err := enforce.New(enforce.Config{Now: clk.Now, Policy: compile(t, `apiVersion: aip.io/v1alpha2
kind: AgentPolicy
metadata: {name: ident}
spec:
  tool_rules:
    - tool: run
      rate_limit: 1/hour
  identity:
    enabled: true
    require_token: true
`)})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		cv := newConversation(t, c, clk)
		token := func() string {
			tok, _, err := c.Identity().Issue(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			return `"_meta":{"aip.io/token":` + quote(tok) + `}`
		}
		first := token()
		cv.run([]round{
			{tool: "run", args: `{}`, params: first, answer: inputRequired("s1")},
			{tool: "run", args: `{}`, params: retry("s1"), want: aip.CodeTokenRequired},
			{tool: "run", args: `{}`, params: retry("s1") + "," + first, want: aip.CodeTokenInvalid}, // replayed
			// The refused attempts did not use the round up.
			{tool: "run", args: `{}`, params: retry("s1") + "," + token()},
			{tool: "run", args: `{}`, params: token(), want: aip.CodeRateLimited},
		})
	})
	t.Run("request DLP scans the retry, its input responses included", func(t *testing.T) {
		clk := &clock{now: t0}
		cv := newConversation(t, roundsCore(t, "enforce", clk), clk)
		args := `{"key":"` + secret + `"}`
		cv.do(0, round{tool: "run", args: args, answer: inputRequired("s1")})
		req, _ := cv.do(1, round{tool: "run", args: args,
			params: `"requestState":"s1","inputResponses":{"q":{"action":"accept","content":{"k":"` + secret + `"}}}`})
		if strings.Contains(string(req.ToServer), secret) {
			t.Fatalf("a secret in the retry reached the server: %s", req.ToServer)
		}
		cv.do(2, round{tool: "run", args: args, want: aip.CodeRateLimited})
	})
	t.Run("the input_required result is scanned, and its state bound as the client receives it", func(t *testing.T) {
		clk := &clock{now: t0}
		cv := newConversation(t, roundsCore(t, "enforce", clk), clk)
		result := `{"resultType":"input_required","inputRequests":{"q":{"method":"elicitation/create","params":{"message":"Is ` + secret + ` yours?","requestedSchema":{"type":"object"}}}},"requestState":"st-` + secret + `"}`
		_, resp := cv.do(0, round{tool: "run", args: `{}`, answer: result})
		if strings.Contains(string(resp.ToClient), secret) {
			t.Fatalf("a secret in the input_required result reached the client: %s", resp.ToClient)
		}
		var got struct {
			Result struct {
				RequestState string `json:"requestState"`
			} `json:"result"`
		}
		if err := json.Unmarshal(resp.ToClient, &got); err != nil || got.Result.RequestState == "" {
			t.Fatalf("no request state in %s", resp.ToClient)
		}
		cv.run([]round{
			{tool: "run", args: `{}`, params: retry(got.Result.RequestState)},
			{tool: "run", args: `{}`, want: aip.CodeRateLimited},
		})
	})
	t.Run("a retry to a tool the server no longer advertises is refused", func(t *testing.T) {
		clk := &clock{now: t0}
		c := roundsCore(t, "enforce", clk)
		cv := newConversation(t, c, clk)
		cv.run([]round{{tool: "run", args: `{}`, answer: inputRequired("s1")}})
		listTools(t, c, cv.s, `{"tools":[{"name":"write_file"}]}`)
		cv.run([]round{{tool: "run", args: `{}`, params: retry("s1"), want: aip.CodeForbidden}})
	})
	t.Run("a retry sent as a notification with other arguments is dropped", func(t *testing.T) {
		clk := &clock{now: t0}
		c := roundsCore(t, "enforce", clk)
		cv := newConversation(t, c, clk)
		cv.run([]round{{tool: "run", args: `{"cmd":"ls"}`, answer: inputRequired("s1")}})
		v := c.FromClient(context.Background(), cv.s, []byte(`{"jsonrpc":"2.0","method":"tools/call","params":{"name":"run","arguments":{"cmd":"rm"},`+retry("s1")+`}}`))
		if v.ToServer != nil || v.ToClient != nil || len(v.Audit) == 0 || v.Audit[0].Event != enforce.EventRoundMismatch {
			t.Fatalf("got to server %s, to client %s, audit %+v", v.ToServer, v.ToClient, v.Audit)
		}
	})
}

func TestTheRoundsOfACallAreAuditedAsOneCall(t *testing.T) {
	clk := &clock{now: time.Date(2026, 7, 28, 9, 0, 0, 0, time.UTC)}
	cv := newConversation(t, roundsCore(t, "enforce", clk), clk)
	first, _ := cv.do(0, round{tool: "write_file", args: `{}`, asked: true, answer: inputRequired("s1")})
	if first.Audit[0].Event != enforce.EventApproved {
		t.Fatalf("first round audited %+v", first.Audit[0])
	}
	second, _ := cv.do(1, round{tool: "write_file", args: `{}`, params: retry("s1")})
	r := second.Audit[0]
	if r.Event != enforce.EventRoundContinued || r.Decision != aip.AuditAllow || r.Extra["round"] != 2 || r.Extra["approved_earlier"] != true {
		t.Fatalf("continued round audited %+v", r)
	}
	refused, _ := cv.do(2, round{tool: "write_file", args: `{"x":1}`, params: retry("s1"), asked: true})
	if refused.Audit[0].Event == enforce.EventRoundContinued {
		t.Fatalf("a new call audited as a continued round: %+v", refused.Audit[0])
	}
}

func TestMemoryForRoundsIsBounded(t *testing.T) {
	t0 := time.Date(2026, 7, 28, 9, 0, 0, 0, time.UTC)
	t.Run("one call shares its decision with at most MaxRoundsPerCall requests", func(t *testing.T) {
		clk := &clock{now: t0}
		cv := newConversation(t, roundsCore(t, "enforce", clk), clk)
		cv.do(0, round{tool: "run", args: `{}`, answer: inputRequired("s")})
		for i := 1; i < enforce.MaxRoundsPerCall; i++ {
			cv.do(i, round{tool: "run", args: `{}`, params: retry("s"), answer: inputRequired("s")})
		}
		cv.do(enforce.MaxRoundsPerCall, round{tool: "run", args: `{}`, params: retry("s"), want: aip.CodeRateLimited})
	})
	t.Run("a session remembers at most MaxWaitingRounds rounds, forgetting the oldest", func(t *testing.T) {
		clk := &clock{now: t0}
		cv := newConversation(t, roundsCore(t, "enforce", clk), clk)
		n := enforce.MaxWaitingRounds + 1
		for i := range n {
			clk.advance(time.Millisecond)
			cv.do(i, round{tool: "write_file", args: `{}`, asked: true, answer: inputRequired("s" + itoa(i))})
		}
		cv.do(n, round{tool: "write_file", args: `{}`, params: retry("s0"), asked: true}) // forgotten
		cv.do(n+1, round{tool: "write_file", args: `{}`, params: retry("s1")})
		cv.do(n+2, round{tool: "write_file", args: `{}`, params: retry("s" + itoa(n-1))})
	})
	t.Run("an answer to a request whose id was released leaves no round", func(t *testing.T) {
		clk := &clock{now: t0}
		c := roundsCore(t, "enforce", clk)
		s := enforce.NewSession()
		v := c.FromClient(context.Background(), s, []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}}`))
		v.AuditFailed() // not carried out: the id is free again
		if r := c.FromServer(context.Background(), s, []byte(`{"jsonrpc":"2.0","id":1,"result":`+inputRequired("s1")+`}`)); r.ToClient != nil {
			t.Fatalf("an answer to no request reached the client: %s", r.ToClient)
		}
		cv := &conversation{t: t, c: c, s: s, clk: clk, id: 1}
		req, _ := cv.do(0, round{tool: "echo", args: `{}`, params: retry("s1")})
		if req.Audit[0].Event == enforce.EventRoundContinued {
			t.Fatalf("a round nobody answered was continued: %+v", req.Audit[0])
		}
	})
}

func TestDeniedMethodsGovernWhatAServerAsksInInputRequests(t *testing.T) {
	const policyYAML = `apiVersion: aip.io/v1alpha2
kind: AgentPolicy
metadata: {name: asks}
spec:
  mode: MODE
  allowed_tools: [t]
  allowed_methods: [tools/call, prompts/get, resources/read]
  denied_methods: [sampling/createMessage, roots/list]
`
	sampling := `{"method":"sampling/createMessage","params":{"messages":[],"maxTokens":10}}`
	elicit := `{"method":"elicitation/create","params":{"mode":"form","message":"?","requestedSchema":{"type":"object"}}}`
	for _, tc := range []struct {
		name, mode, method, result string
		code                       int // 0: the result is delivered
	}{
		{"a denied method in a tools/call result is answered -32006", "enforce", "tools/call",
			`{"resultType":"input_required","inputRequests":{"a":` + elicit + `,"b":` + sampling + `},"requestState":"s"}`, aip.CodeMethodNotAllowed},
		{"in a prompts/get result", "enforce", "prompts/get",
			`{"resultType":"input_required","inputRequests":{"r":{"method":"roots/list"}}}`, aip.CodeMethodNotAllowed},
		{"in a resources/read result", "enforce", "resources/read",
			`{"resultType":"input_required","inputRequests":{"b":` + sampling + `}}`, aip.CodeMethodNotAllowed},
		{"spelled with escapes and case variants", "enforce", "tools/call",
			`{"resultType":"input_required","InputRequests":{"b":{"Method":"sampling\/createMessage"}}}`, aip.CodeMethodNotAllowed},
		{"in a result of a server of the 2025 era", "enforce", "tools/call",
			`{"inputRequests":{"b":` + sampling + `}}`, aip.CodeMethodNotAllowed},
		{"an allowed method is delivered", "enforce", "tools/call",
			`{"resultType":"input_required","inputRequests":{"a":` + elicit + `}}`, 0},
		{"monitor mode delivers a denied one", "monitor", "tools/call",
			`{"resultType":"input_required","inputRequests":{"b":` + sampling + `}}`, 0},
		{"a result that only mentions inputRequests is delivered", "enforce", "tools/call",
			`{"content":[{"type":"text","text":"inputRequests sampling/createMessage"}]}`, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCore(t, strings.Replace(policyYAML, "MODE", tc.mode, 1))
			s := enforce.NewSession()
			params := `{"name":"t","arguments":{}}`
			if tc.method == "resources/read" {
				params = `{"uri":"file:///x"}`
			}
			if v := c.FromClient(context.Background(), s, []byte(`{"jsonrpc":"2.0","id":1,"method":"`+tc.method+`","params":`+params+`}`)); v.ToServer == nil {
				t.Fatalf("request not forwarded: %s", v.ToClient)
			}
			v := c.FromServer(context.Background(), s, []byte(`{"jsonrpc":"2.0","id":1,"result":`+tc.result+`}`))
			if tc.code == 0 {
				if strings.Contains(string(v.ToClient), `"error"`) {
					t.Fatalf("not delivered: %s", v.ToClient)
				}
				if tc.mode == "monitor" && (len(v.Audit) == 0 || v.Audit[0].Decision != aip.AuditAllowMonitor) {
					t.Fatalf("monitor mode did not audit the violation: %+v", v.Audit)
				}
				return
			}
			if errorCode(t, v.ToClient) != tc.code || strings.Contains(string(v.ToClient), "inputRequests") {
				t.Fatalf("got %s, want code %d", v.ToClient, tc.code)
			}
			if len(v.Audit) != 1 || v.Audit[0].Direction != aip.Downstream || v.Audit[0].Event != enforce.EventMethodBlocked {
				t.Fatalf("audit %+v", v.Audit)
			}
		})
	}
}
