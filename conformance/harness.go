package conformance

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/agentid/agentid/approve"
	"github.com/agentid/agentid/audit"
	"github.com/agentid/agentid/enforce"
	"github.com/agentid/agentid/policy"
	"github.com/agentid/agentid/proxy"
)

// vectorTimeout bounds one vector; a hang is a failure, not a stuck run.
const vectorTimeout = 10 * time.Second

// runProxyVector runs one vector black-box through the real proxy: the
// runner is the MCP client, an in-process stub is the MCP server, and the
// outcome is read from the JSON-RPC bytes the client receives and from the
// audit log, exactly as a user would observe it.
func runProxyVector(ctx context.Context, raw json.RawMessage) outcome {
	ctx, cancel := context.WithTimeout(ctx, vectorTimeout)
	defer cancel()

	var v proxyVector
	if err := decodeStrict(raw, &v, ""); err != nil {
		return failed("vector: %v", err)
	}
	if v.Input == nil || v.Expected == nil {
		return failed("vector has no input or expected section")
	}
	in := v.Input
	if problems := proxyVectorShape(&v); len(problems) > 0 {
		return failed("vector: %s", strings.Join(problems, "; "))
	}
	var window time.Duration
	if in.Context != nil && in.Context.Window != "" {
		d, err := policy.ParseDuration(in.Context.Window)
		if err != nil || d <= 0 {
			return failed("vector: input.context.window %q is not a positive duration", in.Context.Window)
		}
		window = d
	}

	var pol *policy.Policy
	if v.Policy != nil {
		p, _, err := policy.Parse([]byte(*v.Policy))
		if err != nil {
			return failed("policy does not load: %v", err)
		}
		pol = p
	}
	compiled, err := enforce.Compile(pol, enforce.LoadOptions{HomeDir: "/home/conformance", WorkDir: "/home/conformance"})
	if err != nil {
		return failed("policy: %v", err)
	}

	asked := &approverStub{}
	if in.Context != nil {
		asked.response = in.Context.UserResponse
	}
	var auditBuf syncBuffer
	approvalTimeout := 5 * time.Second
	if asked.response == "timeout" {
		approvalTimeout = 50 * time.Millisecond
	}
	core, err := enforce.New(enforce.Config{Policy: compiled, ApprovalTimeout: approvalTimeout})
	if err != nil {
		return failed("core: %v", err)
	}
	defer core.Close()
	px := proxy.New(proxy.Config{Core: core, Approver: asked, Audit: audit.New(&auditBuf)})

	content := "ok"
	if in.Type == "response" {
		content = *in.Content
	}
	c := startConversation(ctx, px, content)
	defer c.close()

	start := time.Now()
	if in.Context != nil {
		for i := 0; i < in.Context.PreviousCalls; i++ {
			if _, err := c.call(ctx, json.RawMessage(fmt.Sprint(1000+i)), in.Method, in.Tool, in.Args); err != nil {
				return failed("previous call %d: %v", i+1, err)
			}
		}
	}

	id := json.RawMessage("1")
	if len(in.RequestID) > 0 {
		id = in.RequestID
	}
	method, tool, args := in.Method, in.Tool, in.Args
	if in.Type == "response" {
		// A DLP vector: call an allowed tool; the stub answers with the
		// vector's content, which must come back redacted.
		method, args = "tools/call", json.RawMessage(`{}`)
		name := "any_tool"
		if pol != nil && len(pol.Spec.AllowedTools) > 0 {
			name = pol.Spec.AllowedTools[0]
		}
		tool = &name
	}
	resp, err := c.call(ctx, id, method, tool, args)
	if err != nil {
		return failed("%v", err)
	}
	if window > 0 && time.Since(start) > window {
		return failed("the previous calls and the call took %v, longer than input.context.window %v", time.Since(start), window)
	}
	c.close()
	records := auditRecords(auditBuf.Bytes())
	problems := check(&v.Expected.callExpected, resp, asked.consulted(), records)
	if in.Type == "response" {
		problems = append(problems, checkDLP(v.Expected, *in.Content, resp, records)...)
	}
	return verdict(problems)
}

// proxyVectorShape refuses members that the vector's kind does not use, so
// that none is silently ignored.
func proxyVectorShape(v *proxyVector) []string {
	in, exp := v.Input, v.Expected
	var problems []string
	switch in.Type {
	case "":
		if in.Content != nil {
			problems = append(problems, "input.content is only used with input.type: response")
		}
		for name, set := range map[string]bool{"redacted": exp.Redacted != nil, "output": exp.Output != nil, "dlp_events": exp.DLPEvents != nil} {
			if set {
				problems = append(problems, fmt.Sprintf("expected.%s is only checked with input.type: response", name))
			}
		}
	case "response":
		if in.Content == nil {
			problems = append(problems, "input.type: response needs input.content")
		}
		if in.Method != "" || in.Tool != nil || in.Args != nil {
			problems = append(problems, "input.method, tool and args are not used with input.type: response (the runner calls an allowed tool)")
		}
	default:
		problems = append(problems, fmt.Sprintf("input.type %q is not understood", in.Type))
	}
	if in.Context != nil {
		switch in.Context.UserResponse {
		case "", "approve", "deny", "timeout":
		default:
			problems = append(problems, fmt.Sprintf("input.context.user_response %q is not understood", in.Context.UserResponse))
		}
	}
	sort.Strings(problems)
	return problems
}

// response is what the client received.
type response struct {
	raw   []byte
	value map[string]any
	err   *struct {
		Code    int            `json:"code"`
		Message string         `json:"message"`
		Data    map[string]any `json:"data"`
	}
	result json.RawMessage
}

// check compares an observed answer with the expectations every level
// shares. records are the audit records of the call.
func check(exp *callExpected, resp *response, asked bool, records []map[string]any) []string {
	var problems []string
	decision := "ALLOW"
	switch {
	case resp.err != nil && resp.err.Code == -32002:
		decision = "RATE_LIMITED"
	case resp.err != nil:
		decision = "BLOCK"
	case asked:
		decision = "ASK"
	}
	if exp.Decision != "" && exp.Decision != decision {
		problems = append(problems, fmt.Sprintf("decision %s, want %s", decision, exp.Decision))
	}
	if exp.ErrorCode != nil {
		var want *int
		if err := json.Unmarshal(exp.ErrorCode, &want); err != nil {
			return append(problems, "vector: bad error_code")
		}
		got := 0
		if resp.err != nil {
			got = resp.err.Code
		}
		switch {
		case want == nil && resp.err != nil:
			problems = append(problems, fmt.Sprintf("error %d, want none", got))
		case want != nil && got != *want:
			problems = append(problems, fmt.Sprintf("error code %d, want %d", got, *want))
		}
	}
	if exp.ErrorMessage != nil {
		got := ""
		if resp.err != nil {
			got = resp.err.Message
		}
		if got != *exp.ErrorMessage {
			problems = append(problems, fmt.Sprintf("error message %q, want %q", got, *exp.ErrorMessage))
		}
	}
	if exp.ErrorData != nil {
		var want any
		_ = json.Unmarshal(exp.ErrorData, &want)
		var got any
		if resp.err != nil {
			got = map[string]any(resp.err.Data)
		}
		if !subset(want, got) {
			problems = append(problems, fmt.Sprintf("error data %v, want at least %v", got, want))
		}
	}
	if exp.ResponseFormat != nil {
		var want any
		_ = json.Unmarshal(exp.ResponseFormat, &want)
		if !subset(want, any(resp.value)) {
			problems = append(problems, fmt.Sprintf("response %s does not match %s", resp.raw, exp.ResponseFormat))
		}
	}
	if exp.Violation != nil {
		got := false
		for _, r := range records {
			if r["violation"] == true && r["direction"] == "upstream" {
				got = true
			}
		}
		if got != *exp.Violation {
			problems = append(problems, fmt.Sprintf("audit violation %v, want %v", got, *exp.Violation))
		}
	}
	return problems
}

func checkDLP(exp *expected, content string, resp *response, records []map[string]any) []string {
	var problems []string
	var result struct {
		Content []struct {
			Text string `json:"text"`
		} `json:"content"`
	}
	if resp.err != nil || json.Unmarshal(resp.result, &result) != nil || len(result.Content) != 1 {
		return []string{fmt.Sprintf("unexpected tool response %s", resp.raw)}
	}
	out := result.Content[0].Text
	if exp.Output != nil && out != *exp.Output {
		problems = append(problems, fmt.Sprintf("output %q, want %q", out, *exp.Output))
	}
	if exp.Redacted != nil && (out != content) != *exp.Redacted {
		problems = append(problems, fmt.Sprintf("redacted %v, want %v", out != content, *exp.Redacted))
	}
	if exp.DLPEvents != nil {
		got := map[string]int{}
		for _, r := range records {
			if r["event"] == "DLP_TRIGGERED" {
				n, _ := r["dlp_match_count"].(float64)
				got[fmt.Sprint(r["dlp_rule"])] += int(n)
			}
		}
		want := map[string]int{}
		for _, e := range *exp.DLPEvents {
			want[e.Rule] += e.Count
		}
		if !reflect.DeepEqual(got, want) {
			problems = append(problems, fmt.Sprintf("dlp events %v, want %v", got, want))
		}
	}
	return problems
}

// subset reports whether every member of want is present in got with an
// equal value (numbers compared as JSON numbers).
func subset(want, got any) bool {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return false
		}
		for k, wv := range w {
			if !subset(wv, g[k]) {
				return false
			}
		}
		return true
	default:
		return reflect.DeepEqual(want, got)
	}
}

// approverStub answers approvals as the vector's context says and records
// whether it was consulted.
type approverStub struct {
	response string
	mu       sync.Mutex
	asked    bool
}

func (a *approverStub) Approve(ctx context.Context, _ approve.Request) (approve.Answer, error) {
	a.mu.Lock()
	a.asked = true
	a.mu.Unlock()
	switch a.response {
	case "deny":
		return approve.Denied, nil
	case "timeout":
		<-ctx.Done()
		return approve.TimedOut, nil
	}
	return approve.Approved, nil
}

func (a *approverStub) consulted() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.asked
}

// conversation is a proxy between the runner (client) and a stub server.
type conversation struct {
	toProxy   *io.PipeWriter
	fromProxy *bufio.Reader
	done      chan struct{}
	once      sync.Once
}

func startConversation(ctx context.Context, px *proxy.Proxy, content string) *conversation {
	clientR, clientW := io.Pipe()
	proxyOutR, proxyOutW := io.Pipe()
	serverInR, serverInW := io.Pipe()
	serverOutR, serverOutW := io.Pipe()
	c := &conversation{toProxy: clientW, fromProxy: bufio.NewReader(proxyOutR), done: make(chan struct{})}
	go func() {
		_ = px.Relay(ctx, clientR, proxyOutW, serverInW, serverOutR)
		proxyOutW.Close()
		clientR.Close()
		close(c.done)
	}()
	go stubServer(serverInR, serverOutW, content)
	return c
}

func (c *conversation) close() {
	c.once.Do(func() { c.toProxy.Close() })
}

// call sends one request and waits for the answer to it.
func (c *conversation) call(ctx context.Context, id json.RawMessage, method string, tool *string, args json.RawMessage) (*response, error) {
	req := map[string]any{"jsonrpc": "2.0", "id": id, "method": method}
	if tool != nil {
		params := map[string]any{"name": *tool}
		if args != nil {
			params["arguments"] = args
		}
		req["params"] = params
	}
	return c.request(ctx, req)
}

// request sends one message and waits for the next line the client gets.
func (c *conversation) request(ctx context.Context, req map[string]any) (*response, error) {
	line, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	if _, err := c.toProxy.Write(append(line, '\n')); err != nil {
		return nil, fmt.Errorf("writing to proxy: %w", err)
	}
	type read struct {
		line []byte
		err  error
	}
	ch := make(chan read, 1)
	go func() {
		l, err := c.fromProxy.ReadBytes('\n')
		ch <- read{l, err}
	}()
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("no answer from the proxy: %w", ctx.Err())
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("reading from proxy: %w", r.err)
		}
		return parseResponse(r.line)
	}
}

func parseResponse(line []byte) (*response, error) {
	resp := &response{raw: bytes.TrimSpace(line)}
	if err := json.Unmarshal(line, &resp.value); err != nil {
		return nil, fmt.Errorf("proxy answered with invalid JSON %q: %w", line, err)
	}
	var env struct {
		Result json.RawMessage `json:"result"`
		Error  *struct {
			Code    int            `json:"code"`
			Message string         `json:"message"`
			Data    map[string]any `json:"data"`
		} `json:"error"`
	}
	if err := json.Unmarshal(line, &env); err != nil {
		return nil, err
	}
	resp.result = env.Result
	resp.err = env.Error
	return resp, nil
}

// stubServer answers every request: tools/call with a text result holding
// content, anything else with an empty result.
func stubServer(in io.ReadCloser, out io.WriteCloser, content string) {
	defer out.Close()
	defer in.Close()
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64*1024), 32<<20)
	for sc.Scan() {
		var msg struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		if json.Unmarshal(sc.Bytes(), &msg) != nil || msg.ID == nil {
			continue
		}
		var result any = map[string]any{}
		if strings.EqualFold(msg.Method, "tools/call") {
			result = map[string]any{"content": []any{map[string]any{"type": "text", "text": content}}}
		}
		line, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": msg.ID, "result": result})
		if _, err := out.Write(append(line, '\n')); err != nil {
			return
		}
	}
}

// auditRecords decodes the JSON Lines audit log.
func auditRecords(data []byte) []map[string]any {
	var out []map[string]any
	for _, line := range bytes.Split(data, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var m map[string]any
		if json.Unmarshal(line, &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// syncBuffer is a bytes.Buffer safe for the proxy's concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.b.Bytes()...)
}
