package enforce_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/agentid/agentid/approve"
	"github.com/agentid/agentid/enforce"
	"github.com/agentid/agentid/jsonrpc"
	"github.com/agentid/agentid/policy"
)

// FuzzRounds plays a first call, a server answer and a client retry: no
// answer and no retry may get a call to the rate-limited tool forwarded a
// second time, or the tool that asks forwarded unasked, except as the
// unchanged retry of an input_required round (family 13).
func FuzzRounds(f *testing.F) {
	for _, s := range []struct{ answer, retry string }{
		{`{"jsonrpc":"2.0","id":1,"result":` + inputRequired("s1") + `}`,
			`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"TOOL","arguments":{"c":"a"},` + retry("s1") + `}}`},
		{`{"jsonrpc":"2.0","id":1,"result":` + inputRequired("") + `}`,
			`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"TOOL","arguments":{"c":"b"},` + retry("") + `}}`},
		{`{"jsonrpc":"2.0","id":1,"result":{"inputRequests":{"q":{"method":"roots/list"}},"requestState":"s"}}`,
			`{"jsonrpc":"2.0","method":"tools/call","params":{"name":"TOOL","arguments":{"c":"a"},"RequestState":"s"}}`},
		{`{"jsonrpc":"2.0","id":1,"result":{"resultType":"input_required","requestState":"a\/b"}}`,
			`{"jsonrpc":"2.0","id":"2","method":"tools/call","params":{"name":"TOOL","arguments":{ "c":"a"},"request\u0053tate":"a/b"}}`},
		{`{"jsonrpc":"2.0","id":1,"result":` + completeResult + `}`,
			`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"TOOL","arguments":{"c":"a"},` + retry("forged") + `}}`},
	} {
		for _, tool := range []string{"run", "write_file"} {
			f.Add([]byte(s.answer), bytes.ReplaceAll([]byte(s.retry), []byte("TOOL"), []byte(tool)), tool == "write_file")
		}
	}
	f.Fuzz(func(t *testing.T, answer, retryLine []byte, ask bool) {
		c := roundsCore(t, "enforce", &clock{})
		s := enforce.NewSession()
		ctx := context.Background()
		tool := "run"
		if ask {
			tool = "write_file"
		}
		const args = `{"c":"a"}`
		v := c.FromClient(ctx, s, []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"`+tool+`","arguments":`+args+`}}`))
		if v.Approval != nil {
			v = c.Resolve(v.Approval, approve.Approved)
		}
		if v.ToServer == nil {
			t.Fatalf("the first call was not forwarded: %s", v.ToClient)
		}
		a := c.FromServer(ctx, s, answer)
		checkVerdict(t, a)
		r := c.FromClient(ctx, s, retryLine)
		checkVerdict(t, r)
		checkOwnErrors(t, r)
		if r.ToServer == nil {
			return // refused, or waiting for an approval: decided anew
		}
		msg, err := jsonrpc.Decode(r.ToServer)
		if err != nil || policy.NormalizeName(msg.Method) != "tools/call" {
			return
		}
		call, err := msg.ToolCall()
		if err != nil || policy.NormalizeName(call.Name) != tool {
			return
		}
		// Forwarded with neither a second unit nor a second approval: it
		// must continue the round, byte for byte.
		if string(bytes.TrimSpace(call.Arguments)) != args {
			t.Fatalf("a retry with other arguments was forwarded on the first call's decision: %s", r.ToServer)
		}
		if !bytes.Contains(a.ToClient, []byte("input_required")) && !bytes.Contains(a.ToClient, []byte("inputRequests")) {
			t.Fatalf("a second call was forwarded after a result that asked for nothing (%s): %s", a.ToClient, r.ToServer)
		}
		var p map[string]json.RawMessage
		if json.Unmarshal(msg.Params, &p) != nil {
			t.Fatalf("forwarded params do not decode: %s", r.ToServer)
		}
	})
}
