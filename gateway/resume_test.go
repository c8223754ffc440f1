package gateway_test

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentid/agentid/gateway"
	"github.com/agentid/agentid/server"
)

// A client whose response stream breaks resumes it through the gateway
// with Last-Event-ID, as it would directly, when the upstream keeps its
// events: the event ids pass through, the pending request stays pending,
// and the replayed response reaches the client through the response path.
func TestABrokenStreamResumesWithLastEventID(t *testing.T) {
	release := make(chan struct{})
	s := mcp.NewServer(&mcp.Implementation{Name: "resumable", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "slow"}, func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: req.Params.GetProgressToken(), Progress: 1, Total: 2})
		<-release
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "the key is sk-abcdefgh"}}}, nil, nil
	})
	hs := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s },
		&mcp.StreamableHTTPOptions{EventStore: mcp.NewMemoryEventStore(nil)}))
	defer hs.Close()
	policy := openPolicy + "  allowed_methods: [initialize, notifications/initialized, tools/call, tools/list, notifications/progress]\n  dlp:\n    patterns:\n      - name: Test Secret\n        regex: \"sk-[a-z0-9]{8}\"\n"
	policy = strings.Replace(policy, "allowed_tools: [echo]", "allowed_tools: [slow]", 1)
	gw, _ := newGateway(t, policy, hs.URL, gateway.Config{}, server.Config{})

	status, h, body := rawPost(t, gw+"/mcp", initialize)
	sid := h.Get("Mcp-Session-Id")
	if status != 200 || sid == "" {
		t.Fatalf("initialize: %d %s", status, body)
	}
	const version = "Mcp-Protocol-Version: 2025-11-25"
	rawPost(t, gw+"/mcp", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, "Mcp-Session-Id: "+sid, version)

	// The call's stream: read up to the first event with an id, then break it.
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", gw+"/mcp", strings.NewReader(
		`{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"slow","arguments":{},"_meta":{"progressToken":"p"}}}`))
	for k, v := range map[string]string{"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
		"Mcp-Session-Id": sid, "Mcp-Protocol-Version": "2025-11-25"} {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var lastID string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if id, ok := strings.CutPrefix(sc.Text(), "id: "); ok {
			lastID = id
		}
		if strings.Contains(sc.Text(), "notifications/progress") && lastID != "" {
			break
		}
	}
	cancel()
	resp.Body.Close()
	if lastID == "" {
		t.Fatal("no event id passed through")
	}
	close(release)

	// Resume: the rest of the stream, the response among it, redacted.
	get, _ := http.NewRequest("GET", gw+"/mcp", nil)
	for k, v := range map[string]string{"Accept": "text/event-stream", "Mcp-Session-Id": sid,
		"Mcp-Protocol-Version": "2025-11-25", "Last-Event-ID": lastID} {
		get.Header.Set(k, v)
	}
	gctx, gcancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer gcancel()
	for {
		// The upstream answers 409 while it has not yet seen the broken
		// stream end; a client retries.
		resp, err = http.DefaultClient.Do(get.WithContext(gctx))
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusConflict {
			break
		}
		resp.Body.Close()
		time.Sleep(20 * time.Millisecond)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("resume: %d", resp.StatusCode)
	}
	sc = bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		t.Logf("resumed: %s", line)
		if strings.Contains(line, `"id":9`) {
			if !strings.Contains(line, "[REDACTED:Test Secret]") || strings.Contains(line, "sk-abcdefgh") {
				t.Fatalf("the replayed response skipped the response path: %s", line)
			}
			return
		}
	}
	t.Fatalf("the response was not replayed: %v", sc.Err())
}
