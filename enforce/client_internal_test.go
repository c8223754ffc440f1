package enforce

import "testing"

// The protocol version a request names is read as a JSON library reads
// it, with or without escapes in the string.
func TestProtocolVersionReadsTheStringAsJSONDoes(t *testing.T) {
	for _, tc := range []struct{ params, want string }{
		{`{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}`, "2026-07-28"},
		{`{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-2\u0038"}}`, "2026-07-28"},
		{`{"_meta":{"io.modelcontextprotocol/protocolVersion":"\"x\\"}}`, `"x\`},
		{`{"_meta":{"io.modelcontextprotocol/protocolVersion":""}}`, ""},
		{`{"_meta":{"io.modelcontextprotocol/protocolVersion":20260728}}`, ""},
		{`{"_meta":{"protocolVersion":"2026-07-28"}}`, ""},
		{`{"name":"x"}`, ""},
	} {
		if got := protocolVersion([]byte(tc.params)); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.params, got, tc.want)
		}
	}
}
