package aip_test

import (
	"testing"

	"github.com/agentid/agentid/aip"
)

func TestMessageIsTheSpecsTextForEveryCode(t *testing.T) {
	cases := map[int]string{
		aip.CodeParseError: "Parse error", aip.CodeInvalidRequest: "Invalid Request",
		aip.CodeMethodNotFound: "Method not found", aip.CodeInvalidParams: "Invalid params",
		aip.CodeInternalError: "Internal error", aip.CodeForbidden: "Forbidden",
		aip.CodeRateLimited: "Rate limit exceeded", aip.CodeUserDenied: "User denied",
		aip.CodeUserTimeout: "User approval timeout", aip.CodeMethodNotAllowed: "Method not allowed",
		aip.CodeProtectedPath: "Access denied: protected path", aip.CodeTokenRequired: "Token required",
		aip.CodeTokenInvalid: "Token invalid", aip.CodePolicySignatureInvalid: "Policy signature invalid",
		aip.CodeTokenRevoked: "Token revoked", aip.CodeAudienceMismatch: "Audience mismatch",
		aip.CodeSchemaMismatch: "Schema mismatch", aip.CodeDLPRedactionFailed: "DLP redaction failed",
		-32003: "Server error", -32099: "Server error", -32100: "Unknown error", 1: "Unknown error",
	}
	for code, want := range cases {
		if got := aip.Message(code); got != want {
			t.Errorf("Message(%d) = %q, want %q", code, got, want)
		}
	}
}

func TestIsAIPOnlyForTheCodesOfSection7(t *testing.T) {
	for code := -32099; code <= -32000; code++ {
		want := code >= -32014 && code <= -32001 && code != -32003
		if got := aip.IsAIP(code); got != want {
			t.Errorf("IsAIP(%d) = %v, want %v", code, got, want)
		}
	}
	for _, code := range []int{aip.CodeParseError, aip.CodeInvalidRequest, aip.CodeInternalError, 0} {
		if aip.IsAIP(code) {
			t.Errorf("IsAIP(%d) = true for a JSON-RPC code", code)
		}
	}
}

func TestMarkDataAddsTheCodesNameAndKeepsTheRest(t *testing.T) {
	if got := aip.MarkData(aip.CodeRateLimited, nil); len(got) != 1 || got[aip.DataKey] != "rate_limited" {
		t.Errorf("MarkData(nil) = %v, want only %s: rate_limited", got, aip.DataKey)
	}
	data := map[string]any{"reason": "r"}
	got := aip.MarkData(aip.CodeForbidden, data)
	if got["reason"] != "r" || got[aip.DataKey] != "forbidden" || len(got) != 2 {
		t.Errorf("MarkData = %v, want reason and %s: forbidden", got, aip.DataKey)
	}
}
