package server_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agentid/agentid/aip"
	"github.com/agentid/agentid/enforce"
	"github.com/agentid/agentid/server"
)

// failOpenLocal is a proxy's own policy that lets read_file through
// whenever the validation server cannot be reached.
const failOpenLocal = "apiVersion: aip.io/v1alpha2\nkind: AgentPolicy\nmetadata: {name: local}\nspec:\n  allowed_tools: [read_file]\n  server:\n    failover_mode: fail_open\n    fail_open_constraints: {allowed_tools: [read_file], max_requests: 1000}\n"

// hostile answers every request with status and body.
func hostile(t *testing.T, status int, body string, header ...string) string {
	t.Helper()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, h := range header {
			k, v, _ := strings.Cut(h, ": ")
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		w.Write([]byte(body))
	}))
	t.Cleanup(hs.Close)
	return hs.URL
}

func TestAServerAnswerThatIsNoDecisionIsNeverAnAllowEvenUnderFailOpen(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		status     int
		header     []string
	}{
		{"a 200 whose body is not JSON", "<html>ok</html>", 200, nil},
		{"a 200 with a truncated body", `{"decision":"allow"`, 200, nil},
		{"a 200 without a decision", `{}`, 200, nil},
		{"a 200 with an unknown decision", `{"decision":"permit"}`, 200, nil},
		{"a 200 with the decision twice", `{"decision":"block","decision":"allow"}`, 200, nil},
		{"a 200 with the decision in another letter case", `{"Decision":"allow"}`, 200, nil},
		{"a 204 without a body", ``, 204, nil},
		{"a redirect", `{"decision":"allow"}`, 302, []string{"Location: http://127.0.0.1:1/v1/validate"}},
		{"a 404 of a wrong path", `{"error":"not_found"}`, 404, nil},
		{"a 413 for arguments over the server's body limit", `{"error":"request_too_large"}`, 413, nil},
		{"a 415", `{"error":"unsupported_media_type"}`, 415, nil},
		{"the server's own fail_closed answer", `{"error":"validation_unavailable"}`, 503, nil},
		{"the server's audit log failing", `{"error":"internal_error"}`, 500, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			core := remoteProxy(t, hostile(t, tc.status, tc.body, tc.header...), failOpenLocal)
			code, data := outcome(t, core, enforce.NewSession(), toolCall(1, "read_file", `{}`, ""))
			if code == 0 {
				t.Fatalf("the call was forwarded (%v)", data)
			}
		})
	}
}

func TestAProxyFailsOverWhenNoValidationServerAnswers(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		status     int
	}{
		{"a load balancer without a healthy backend", "no healthy upstream", 503},
		{"a gateway error", "<html>Bad Gateway</html>", 502},
		{"a gateway timeout", "", 504},
	} {
		t.Run(tc.name, func(t *testing.T) {
			core := remoteProxy(t, hostile(t, tc.status, tc.body), failOpenLocal)
			if code, data := outcome(t, core, enforce.NewSession(), toolCall(1, "read_file", `{}`, "")); code != 0 {
				t.Fatalf("fail_open within its constraints refused: %d %v", code, data)
			}
			code, data := outcome(t, core, enforce.NewSession(), toolCall(2, "delete_file", `{}`, ""))
			if code != aip.CodeForbidden {
				t.Fatalf("fail_open outside allowed_tools: %d %v", code, data)
			}
		})
	}
}

func TestArgumentsOverTheServersBodyLimitAreRefusedNotFailedOver(t *testing.T) {
	ts := newTestServer(t, server.Config{AdminToken: []byte(adminToken)}, basePolicy)
	core := remoteProxy(t, ts.url, failOpenLocal)
	big := `{"path":"~/.ssh/id_rsa","pad":"` + strings.Repeat("a", server.DefaultMaxBodyBytes) + `"}`
	code, data := outcome(t, core, enforce.NewSession(), toolCall(1, "read_file", big, ""))
	if code != aip.CodeInvalidParams {
		t.Fatalf("a call the server could not read: %d %v, want %d", code, data, aip.CodeInvalidParams)
	}
}

func TestATokenThatCannotTravelInAHeaderIsRefusedNotFailedOver(t *testing.T) {
	ts := newTestServer(t, server.Config{AdminToken: []byte(adminToken)}, basePolicy)
	core := remoteProxy(t, ts.url, failOpenLocal)
	// The agent chooses the token: one that no HTTP request can carry
	// made the request fail before it was sent, which looked like an
	// unreachable server.
	for _, token := range []string{`x\ny`, `x\r\nX-Injected: 1`, `x\u0000y`, `x\u007fy`} {
		code, data := outcome(t, core, enforce.NewSession(), toolCall(1, "read_file", `{"path":"~/.ssh/id_rsa"}`, token))
		if code == 0 {
			t.Errorf("token %q: the call was forwarded (%v)", token, data)
		}
	}
}

func TestArgumentsOverTheServersBodyLimitAreRefusedBeforeTheyAreSent(t *testing.T) {
	// A server (or the network before it) that cuts the connection of an
	// oversized body looks unreachable; whether the 413 arrives first is a
	// race the agent must not be able to run.
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	t.Cleanup(hs.Close)
	core := remoteProxy(t, hs.URL, failOpenLocal)
	big := `{"path":"~/.ssh/id_rsa","pad":"` + strings.Repeat("a", server.DefaultMaxBodyBytes) + `"}`
	if code, data := outcome(t, core, enforce.NewSession(), toolCall(1, "read_file", big, "")); code != aip.CodeInvalidParams {
		t.Fatalf("oversized arguments: %d %v, want %d", code, data, aip.CodeInvalidParams)
	}
	if code, data := outcome(t, core, enforce.NewSession(), toolCall(2, "read_file", `{}`, "")); code != 0 {
		t.Fatalf("a small call to a server that hangs up fails over (fail_open): %d %v", code, data)
	}
}
