package enforce_test

import (
	"context"
	"strings"
	"testing"

	"github.com/agentid/agentid/enforce"
)

// A budget that runs out fails closed (issue #9 family 4): what lies past
// dlp.max_scan_size was never scanned, so it is neither forwarded nor
// written to the audit log. §3.6.3 lets a scanner look at the first
// max_scan_size bytes only; it does not say the rest may pass.
func TestContentOverMaxScanSizeIsNotForwarded(t *testing.T) {
	const policy = `apiVersion: aip.io/v1alpha2
kind: AgentPolicy
metadata: {name: maxscan}
spec:
  allowed_tools: [echo]
  dlp:
    scan_requests: true
    max_scan_size: 1KB
    on_request_match: redact
    patterns:
      - name: Key
        regex: "sk-[a-z0-9]{8}"
`
	c := newCore(t, policy)
	ctx := context.Background()
	big := strings.Repeat("a", 2048)

	t.Run("arguments over the limit are refused with the reason", func(t *testing.T) {
		s := enforce.NewSession()
		v := c.FromClient(ctx, s, call(1, "echo", `{"text":"`+big+` sk-abcdefgh"}`))
		if v.ToServer != nil || errorCode(t, v.ToClient) != -32001 || !strings.Contains(string(v.ToClient), "max_scan_size") {
			t.Fatalf("forwarded %q, answered %s", v.ToServer, v.ToClient)
		}
		for _, r := range v.Audit {
			if strings.Contains(string(r.Args), "sk-abcdefgh") || strings.Contains(string(r.Args), big) {
				t.Fatalf("the audit log got unscanned arguments: %s", r.Args)
			}
		}
	})
	t.Run("arguments within the limit are scanned and redacted", func(t *testing.T) {
		s := enforce.NewSession()
		v := c.FromClient(ctx, s, call(2, "echo", `{"text":"sk-abcdefgh"}`))
		if v.ToServer == nil || strings.Contains(string(v.ToServer), "sk-abcdefgh") {
			t.Fatalf("forwarded %q, answered %s", v.ToServer, v.ToClient)
		}
	})
	for _, c2 := range []struct{ name, result string }{
		{"a response over the limit becomes an error for its id", `{"content":[{"type":"text","text":"` + big + ` sk-abcdefgh"}]}`},
		{"a secret past the limit does not slip through", `{"content":[{"type":"text","text":"` + big + `"},{"type":"text","text":"sk-abcdefgh"}]}`},
	} {
		t.Run(c2.name, func(t *testing.T) {
			s := enforce.NewSession()
			if v := c.FromClient(ctx, s, call(3, "echo", `{"text":"x"}`)); v.ToServer == nil {
				t.Fatalf("call refused: %s", v.ToClient)
			}
			v := c.FromServer(ctx, s, []byte(`{"jsonrpc":"2.0","id":3,"result":`+c2.result+`}`))
			if strings.Contains(string(v.ToClient), "sk-abcdefgh") || errorCode(t, v.ToClient) != -32603 || !strings.Contains(string(v.ToClient), "max_scan_size") {
				t.Fatalf("the client got %s", v.ToClient)
			}
		})
	}
}
