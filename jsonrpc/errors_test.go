package jsonrpc

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/agentid/agentid/aip"
)

func TestErrorResponse(t *testing.T) {
	tests := []struct {
		name    string
		id      json.RawMessage
		code    int
		message string
		data    any
		want    string
	}{
		{"number id is echoed as a number", json.RawMessage(`123`), -32001, "Forbidden", nil,
			`{"jsonrpc":"2.0","id":123,"error":{"code":-32001,"message":"Forbidden"}}`},
		{"string id is echoed as a string", json.RawMessage(`"abc-123"`), -32001, "Forbidden", nil,
			`{"jsonrpc":"2.0","id":"abc-123","error":{"code":-32001,"message":"Forbidden"}}`},
		{"string id is echoed byte for byte", json.RawMessage(`"a\u0062c"`), -32001, "Forbidden", nil,
			`{"jsonrpc":"2.0","id":"a\u0062c","error":{"code":-32001,"message":"Forbidden"}}`},
		{"large id keeps its digits", json.RawMessage(`90071992547409931234`), -32001, "Forbidden", nil,
			`{"jsonrpc":"2.0","id":90071992547409931234,"error":{"code":-32001,"message":"Forbidden"}}`},
		{"nil id is null", nil, -32700, "Parse error", nil,
			`{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}`},
		{"null id is null", json.RawMessage(`null`), -32700, "Parse error", nil,
			`{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}`},
		{"id that is not a string or integer is written as null", json.RawMessage(`{"a":1}`), -32600, "Invalid Request", nil,
			`{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid Request"}}`},
		{"malformed id is written as null", json.RawMessage(`1,"x":"y"`), -32600, "Invalid Request", nil,
			`{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid Request"}}`},
		{"data keys are sorted", json.RawMessage(`1`), -32001, "Forbidden", map[string]any{"tool": "rm", "reason": "no"},
			`{"jsonrpc":"2.0","id":1,"error":{"code":-32001,"message":"Forbidden","data":{"reason":"no","tool":"rm"}}}`},
		{"data is not HTML-escaped", json.RawMessage(`1`), -32001, "Forbidden", map[string]string{"reason": "<a> & <b>"},
			`{"jsonrpc":"2.0","id":1,"error":{"code":-32001,"message":"Forbidden","data":{"reason":"<a> & <b>"}}}`},
		{"data that cannot be encoded is omitted", json.RawMessage(`1`), -32001, "Forbidden", math.NaN(),
			`{"jsonrpc":"2.0","id":1,"error":{"code":-32001,"message":"Forbidden"}}`},
		{"raw data is compacted onto the line", json.RawMessage(`1`), -32001, "Forbidden", json.RawMessage("{\n  \"a\": 1\n}"),
			`{"jsonrpc":"2.0","id":1,"error":{"code":-32001,"message":"Forbidden","data":{"a":1}}}`},
		{"message is escaped", json.RawMessage(`1`), 1, "say \"hi\"\n<\\>\u2028", nil,
			`{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"say \"hi\"\n<\\>\u2028"}}`},
		{"invalid UTF-8 in message becomes U+FFFD", json.RawMessage(`1`), 1, "a\xffb", nil,
			`{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"a\ufffdb"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ErrorResponse(tt.id, tt.code, tt.message, tt.data)
			if string(got) != tt.want+"\n" {
				t.Errorf("ErrorResponse =\n%s\nwant\n%s", got, tt.want)
			}
			// Whatever the input, the answer must itself be one valid message.
			line := got[:len(got)-1]
			if strings.ContainsAny(string(line), "\r\n") {
				t.Errorf("response contains a line break inside: %q", got)
			}
			if m, err := Decode(line); err != nil || m.Kind != KindResponse {
				t.Errorf("Decode(response) = %+v, %v; want a valid response", m, err)
			}
		})
	}
}

func TestAIPErrorUsesTheSpecMessage(t *testing.T) {
	got := string(AIPError(json.RawMessage(`"req-1"`), aip.CodeProtectedPath, map[string]string{"tool": "read_file", "reason": "protected"}))
	want := `{"jsonrpc":"2.0","id":"req-1","error":{"code":-32007,"message":"Access denied: protected path","data":{"reason":"protected","tool":"read_file"}}}` + "\n"
	if got != want {
		t.Errorf("AIPError =\n%s\nwant\n%s", got, want)
	}
}

func TestCodeMessage(t *testing.T) {
	tests := []struct {
		code int
		want string
	}{
		{aip.CodeParseError, "Parse error"},
		{aip.CodeInvalidRequest, "Invalid Request"},
		{aip.CodeMethodNotFound, "Method not found"},
		{aip.CodeInvalidParams, "Invalid params"},
		{aip.CodeInternalError, "Internal error"},
		{aip.CodeForbidden, "Forbidden"},
		{aip.CodeRateLimited, "Rate limit exceeded"},
		{aip.CodeUserDenied, "User denied"},
		{aip.CodeUserTimeout, "User approval timeout"},
		{aip.CodeMethodNotAllowed, "Method not allowed"},
		{aip.CodeProtectedPath, "Access denied: protected path"},
		{aip.CodeTokenRequired, "Token required"},
		{aip.CodeTokenInvalid, "Token invalid"},
		{aip.CodePolicySignatureInvalid, "Policy signature invalid"},
		{aip.CodeTokenRevoked, "Token revoked"},
		{aip.CodeAudienceMismatch, "Audience mismatch"},
		{aip.CodeSchemaMismatch, "Schema mismatch"},
		{aip.CodeDLPRedactionFailed, "DLP redaction failed"},
		{-32003, "Server error"}, // unassigned in AIP v1alpha2
		{42, "Unknown error"},
	}
	for _, tt := range tests {
		if got := aip.Message(tt.code); got != tt.want {
			t.Errorf("aip.Message(%d) = %q, want %q", tt.code, got, tt.want)
		}
	}
	codes := map[int]int{
		aip.CodeForbidden: -32001, aip.CodeRateLimited: -32002, aip.CodeUserDenied: -32004, aip.CodeUserTimeout: -32005,
		aip.CodeMethodNotAllowed: -32006, aip.CodeProtectedPath: -32007, aip.CodeTokenRequired: -32008, aip.CodeTokenInvalid: -32009,
		aip.CodePolicySignatureInvalid: -32010, aip.CodeTokenRevoked: -32011, aip.CodeAudienceMismatch: -32012,
		aip.CodeSchemaMismatch: -32013, aip.CodeDLPRedactionFailed: -32014,
	}
	for got, want := range codes {
		if got != want {
			t.Errorf("code constant %d, want %d", got, want)
		}
	}
}

func TestErrorStringHasPackagePrefix(t *testing.T) {
	e := &Error{Code: aip.CodeForbidden, Message: "Forbidden"}
	if got, want := e.Error(), "jsonrpc: forbidden (-32001)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
