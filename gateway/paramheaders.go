package gateway

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/agentid/agentid/dlp"
)

// paramHeaderPrefix names the headers that mirror tool parameters (MCP
// 2026-07-28: a property of a tool's input schema with x-mcp-header is sent
// as Mcp-Param-{Name} too, and the server refuses a call whose headers and
// arguments differ).
const paramHeaderPrefix = "Mcp-Param-"

// paramHeaders returns h with its Mcp-Param-* headers as the upstream may
// see them. Each value goes through request DLP as the argument it mirrors
// does: redacted the same way (so that the server finds the two equal and
// never sees the secret in either), or, where on_request_match would block
// the call, dropped (the server then refuses the call for the missing
// header, and the value goes nowhere). h itself when there is nothing to
// change.
func (g *Gateway) paramHeaders(h http.Header) http.Header {
	scanner := g.core.Policy().DLP
	if !scanner.ScansRequests() {
		return h
	}
	var out http.Header
	for k, vs := range h {
		if !strings.HasPrefix(k, paramHeaderPrefix) {
			continue
		}
		if out == nil {
			out = h.Clone()
		}
		out.Del(k)
		for _, v := range vs {
			if nv, ok := redactParamHeader(scanner, v); ok {
				out.Add(k, nv)
			}
		}
	}
	if out == nil {
		return h
	}
	return out
}

// redactParamHeader is the header value v after request DLP; ok is false
// when it must not be forwarded.
func redactParamHeader(s *dlp.Scanner, v string) (string, bool) {
	raw, err := json.Marshal(map[string]string{"v": headerValue(v)})
	if err != nil {
		return "", false
	}
	out := s.ScanRequest(raw, nil)
	if out.Action != dlp.Forward {
		return "", false
	}
	if len(out.Findings) == 0 {
		return v, true
	}
	var m struct {
		V string `json:"v"`
	}
	if json.Unmarshal(out.Arguments, &m) != nil {
		return "", false
	}
	return encodeHeaderValue(m.V), true
}

// encodeHeaderValue is s as MCP sends a header value: as it is when it is
// visible ASCII without surrounding spaces, else in the "=?base64?…?=" form.
func encodeHeaderValue(s string) string {
	plain := s != "" && s[0] != ' ' && s[len(s)-1] != ' '
	for i := 0; plain && i < len(s); i++ {
		plain = s[i] >= 0x20 && s[i] < 0x7f
	}
	if plain {
		return s
	}
	return "=?base64?" + base64.StdEncoding.EncodeToString([]byte(s)) + "?="
}
