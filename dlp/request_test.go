package dlp

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/agentid/agentid/policy"
)

func TestScanRequestAppliesOnRequestMatchAndOnRedactionFailure(t *testing.T) {
	const args = `{"url":"https://api.example.com/?key=sk-abcdefghijklmnopqrstuvwxyz012345","n":1}`
	const redacted = `{"url":"https://api.example.com/?key=[REDACTED:API Key]","n":1}`
	const dupArgs = `{"sk-abcdefghijklmnopqrstuvwxyz012345":1,"[redacted:api key]":2}`
	failValidation := func([]byte) error { return errors.New("url: does not match") }
	tests := []struct {
		name          string
		scanRequests  *bool
		onMatch       string
		onFailure     string
		revalidate    func([]byte) error
		args          string
		wantAction    RequestAction
		wantArgs      string
		wantEvent     string
		wantReason    string
		wantNoFinding bool
	}{
		{"scan_requests off forwards untouched", nil, "", "", nil, args, Forward, args, "", "", true},
		{"default on_request_match blocks", ptr(true), "", "", nil, args, BlockRequest, args, EventRequestMatch, "", false},
		{"warn forwards the original", ptr(true), policy.OnMatchWarn, "", nil, args, Forward, args, EventRequestMatch, "", false},
		{"redact forwards redacted arguments", ptr(true), policy.OnMatchRedact, "", nil, args, Forward, redacted, EventRequestRedaction, "", false},
		{"redact that passes revalidation forwards", ptr(true), policy.OnMatchRedact, "", func([]byte) error { return nil }, args, Forward, redacted, EventRequestRedaction, "", false},
		{"failed redaction blocks by default", ptr(true), policy.OnMatchRedact, "", failValidation, args, BlockRequest, args, EventRequestRedaction, ReasonValidationFailed, false},
		{"failed redaction with allow_original forwards the original", ptr(true), policy.OnMatchRedact, policy.OnFailureAllowOriginal, failValidation, args, Forward, args, EventRequestRedaction, ReasonValidationFailed, false},
		{"failed redaction with reject answers -32014", ptr(true), policy.OnMatchRedact, policy.OnFailureReject, failValidation, args, RejectRequest, args, EventRequestRedaction, ReasonValidationFailed, false},
		{"a redacted key that would duplicate another is a failed redaction", ptr(true), policy.OnMatchRedact, "", nil, dupArgs, BlockRequest, dupArgs, EventRequestRedaction, ReasonDuplicateKey, false},
		{"a duplicating key redaction with allow_original forwards the original", ptr(true), policy.OnMatchRedact, policy.OnFailureAllowOriginal, nil, dupArgs, Forward, dupArgs, EventRequestRedaction, ReasonDuplicateKey, false},
		{"a duplicating key redaction with reject answers -32014", ptr(true), policy.OnMatchRedact, policy.OnFailureReject, nil, dupArgs, RejectRequest, dupArgs, EventRequestRedaction, ReasonDuplicateKey, false},
		{"a secret key under warn forwards the original", ptr(true), policy.OnMatchWarn, "", nil, dupArgs, Forward, dupArgs, EventRequestMatch, "", false},
		{"a secret key under block blocks", ptr(true), "", "", nil, dupArgs, BlockRequest, dupArgs, EventRequestMatch, "", false},
		{"no match forwards", ptr(true), "", "", nil, `{"q":"weather"}`, Forward, `{"q":"weather"}`, "", "", true},
		{"unscannable arguments are blocked", ptr(true), policy.OnMatchWarn, "", nil, `{"q":`, BlockRequest, `{"q":`, EventRequestMatch, ReasonScanFailed, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newScanner(t, &policy.DLP{ScanRequests: tt.scanRequests, OnRequestMatch: tt.onMatch, OnRedactionFailure: tt.onFailure},
				"API Key", `sk-[a-zA-Z0-9]{32}`)
			var reval func([]byte) error
			if tt.revalidate != nil {
				reval = tt.revalidate
			}
			revalidate := func(b json.RawMessage) error {
				if reval == nil {
					return nil
				}
				return reval(b)
			}
			out := s.ScanRequest([]byte(tt.args), revalidate)
			// A caller that already redacted the arguments (the proxy, for
			// the audit log) gets the same outcome without a second scan.
			res, err := s.RedactJSON(Request, []byte(tt.args))
			if again := s.ScanRequestRedacted([]byte(tt.args), res, err, revalidate); !reflect.DeepEqual(again, out) {
				t.Errorf("ScanRequestRedacted = %+v, ScanRequest = %+v", again, out)
			}
			if out.Action != tt.wantAction || string(out.Arguments) != tt.wantArgs || out.Event != tt.wantEvent || out.Reason != tt.wantReason {
				t.Errorf("got action=%v args=%s event=%q reason=%q", out.Action, out.Arguments, out.Event, out.Reason)
			}
			if tt.wantNoFinding != (out.Findings == nil) {
				t.Errorf("findings %v", out.Findings)
			}
			if !tt.wantNoFinding && (out.Rule != "API Key" || !reflect.DeepEqual(out.Findings, []Finding{{"API Key", 1}})) {
				t.Errorf("rule %q findings %v", out.Rule, out.Findings)
			}
			if tt.wantReason == ReasonValidationFailed && out.ValidationError != "url: does not match" {
				t.Errorf("validation error %q", out.ValidationError)
			}
		})
	}
}

func TestScanRequestUsesOnlyRequestScopedPatterns(t *testing.T) {
	s, err := New(&policy.DLP{ScanRequests: ptr(true), Patterns: []policy.DLPPattern{
		{Name: "SSN", Regex: `\d{3}-\d{2}-\d{4}`, Scope: policy.ScopeResponse},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if out := s.ScanRequest([]byte(`{"id":"123-45-6789"}`), nil); out.Action != Forward || out.Findings != nil {
		t.Errorf("response-scoped pattern applied to a request: %+v", out)
	}
}
