package gateway_test

import (
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/agentid/agentid/gateway"
	"github.com/agentid/agentid/server"
)

// Every decision, allowed or denied, is a span with its tool, decision and
// AIP code, a child of the client's trace; the upstream sees the gateway's
// span as its parent.
func TestEveryDecisionIsASpanAndTheTraceGoesUpstream(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(t.Context())
	rec := &recorder{}
	up := echoServer(t, rec)
	gw, _ := newGateway(t, openPolicy, up, gateway.Config{Tracer: tp.Tracer("agentid")}, server.Config{})

	const clientTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	parent := "Traceparent: 00-" + clientTrace + "-00f067aa0ba902b7-01"
	if status, _, body := rawPost(t, gw+"/mcp", initialize, parent); status != 200 {
		t.Fatalf("initialize: %d %s", status, body)
	}
	forwarded := rec.last().Get("Traceparent")
	denied := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"rm","arguments":{}}}`
	if status, _, body := rawPost(t, gw+"/mcp", denied, parent); status != 200 || !strings.Contains(body, "-32001") {
		t.Fatalf("denied call: %d %s", status, body)
	}

	spans := exp.GetSpans()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2", len(spans))
	}
	attrs := func(i int) map[string]string {
		m := map[string]string{}
		for _, a := range spans[i].Attributes {
			m[string(a.Key)] = a.Value.Emit()
		}
		return m
	}
	allow, deny := attrs(0), attrs(1)
	if allow["mcp.method.name"] != "initialize" || allow["aip.decision"] != "ALLOW" {
		t.Errorf("allowed span: %v", allow)
	}
	if deny["gen_ai.tool.name"] != "rm" || deny["aip.decision"] != "BLOCK" || deny["aip.error.code"] != "-32001" {
		t.Errorf("denied span: %v", deny)
	}
	for i, s := range spans {
		if s.SpanContext.TraceID().String() != clientTrace {
			t.Errorf("span %d is not in the client's trace: %s", i, s.SpanContext.TraceID())
		}
	}
	if !strings.Contains(forwarded, clientTrace) || !strings.Contains(forwarded, spans[0].SpanContext.SpanID().String()) {
		t.Errorf("upstream traceparent %q, want the gateway's span %s in trace %s", forwarded, spans[0].SpanContext.SpanID(), clientTrace)
	}
}

// The gateway's requests, decisions and token checks are in the metrics it
// shares with the validation server (GET /metrics).
func TestDecisionsAreCountedInTheSharedMetrics(t *testing.T) {
	up := echoServer(t, nil)
	gw, _ := newGateway(t, openPolicy, up, gateway.Config{}, server.Config{})
	rawPost(t, gw+"/mcp", initialize)
	rawPost(t, gw+"/mcp", `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"rm","arguments":{}}}`)
	status, _, body := send(t, "GET", gw+"/metrics", "")
	for _, want := range []string{`aip_requests_total{endpoint="mcp"} 2`, `aip_decisions_total{decision="allow"} 1`, `aip_decisions_total{decision="block"} 1`,
		`aip_responses_total{code="200",endpoint="mcp"} 2`} {
		if status != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, body)
		}
	}
}
