package gateway

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/agentid/agentid/aip"
	"github.com/agentid/agentid/enforce"
)

// Attributes of a decision's span. The semantic-convention names of MCP
// are used where they exist; the rest are agentid's.
const (
	attrMethod     = attribute.Key("mcp.method.name")
	attrSession    = attribute.Key("mcp.session.id")
	attrTool       = attribute.Key("gen_ai.tool.name")
	attrDecision   = attribute.Key("aip.decision")
	attrCode       = attribute.Key("aip.error.code")
	attrEvent      = attribute.Key("aip.event")
	attrAgent      = attribute.Key("aip.agent_id")
	attrAIPSession = attribute.Key("aip.session_id")
	attrPeer       = attribute.Key("aip.client.spiffe_id")
)

// traceContext reads and writes W3C trace context (traceparent,
// tracestate) and baggage.
var traceContext = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// startSpan starts the span of one client message, as a child of the trace
// context the client sent, and returns r with the span in its context.
// Without a tracer it does nothing (a span nobody records costs every call
// a header parse and a request copy): r is returned as it is, so the
// upstream request carries no span of the gateway's and the client's trace
// headers are forwarded as they came.
func (g *Gateway) startSpan(r *http.Request) (*http.Request, trace.Span) {
	if g.cfg.Tracer == nil {
		return r, noop.Span{}
	}
	ctx := traceContext.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	ctx, span := g.cfg.Tracer.Start(ctx, "mcp.gateway.decide", trace.WithSpanKind(trace.SpanKindServer))
	return r.WithContext(ctx), span
}

// describe records on span what the core decided: the method, the tool,
// the decision with its AIP code and event, and who asked.
func describe(span trace.Span, v *enforce.Verdict, who principal, sess *session) {
	if !span.IsRecording() {
		return
	}
	if _, method, ok := v.Request(); ok {
		span.SetAttributes(attrMethod.String(method))
	}
	if sess != nil {
		// Not the id itself: without identity it is the session's only
		// credential, and traces leave the gateway.
		span.SetAttributes(attrSession.String(sess.traceID()))
	}
	if who.Agent != "" {
		span.SetAttributes(attrAgent.String(who.Agent), attrAIPSession.String(who.Session))
	}
	if who.Peer != "" {
		span.SetAttributes(attrPeer.String(who.Peer))
	}
	// The last record is the decision; earlier ones are findings (DLP).
	if n := len(v.Audit); n > 0 {
		rec := v.Audit[n-1]
		if rec.Method != "" {
			span.SetAttributes(attrMethod.String(rec.Method))
		}
		if rec.Tool != "" {
			span.SetAttributes(attrTool.String(rec.Tool))
		}
		span.SetAttributes(attrDecision.String(rec.Decision))
		if rec.Event != "" {
			span.SetAttributes(attrEvent.String(rec.Event))
		}
		if rec.Code != 0 {
			span.SetAttributes(attrCode.Int(rec.Code))
		}
		if rec.Decision == aip.AuditBlock || rec.Decision == aip.AuditRateLimited {
			span.SetStatus(codes.Error, rec.Reason)
		}
	}
}

// injectTrace puts the span's trace context on the upstream request, in
// place of what the client sent.
func injectTrace(ctx context.Context, h http.Header) {
	h.Del("Traceparent")
	h.Del("Tracestate")
	traceContext.Inject(ctx, propagation.HeaderCarrier(h))
}
