package enforce

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/agentid/agentid/internal/strictjson"
)

func TestRetryParamsReadTheMembersAServerReads(t *testing.T) {
	for _, tc := range []struct {
		name, params string
		state        string
		hasState     bool
		responses    bool
	}{
		{"a retry with state and responses", `{"name":"t","arguments":{},"inputResponses":{"q":{}},"requestState":"s"}`, "s", true, true},
		{"responses alone", `{"name":"t","inputResponses":{}}`, "", false, true},
		{"state alone", `{"requestState":"s","name":"t"}`, "s", true, false},
		{"a case variant Go's encoding/json reads", `{"RequestState":"s","INPUTRESPONSES":{}}`, "s", true, true},
		{"a long s that folds to s", `{"requeſtState":"s"}`, "s", true, false},
		{"an escaped key", `{"request\u0053tate":"s","input\u0052esponses":{}}`, "s", true, true},
		{"an escaped state", `{"requestState":"a\/b\u0021"}`, "a/b!", true, false},
		{"a state that is not a string", `{"requestState":{"s":1}}`, "", false, false},
		{"members of the arguments are not the call's", `{"arguments":{"requestState":"s","inputResponses":{}}}`, "", false, false},
		{"a longer name", `{"requestStates":"s","inputResponsesX":{}}`, "", false, false},
		{"no params object", `[]`, "", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state, hasState, responses := retryParams([]byte(tc.params))
			if state != tc.state || hasState != tc.hasState || responses != tc.responses {
				t.Fatalf("got (%q, %v, %v), want (%q, %v, %v)", state, hasState, responses, tc.state, tc.hasState, tc.responses)
			}
		})
	}
}

func TestInputRequiredReadsTheResultAsAClientDoes(t *testing.T) {
	for _, tc := range []struct {
		name, result string
		state        string
		hasState, ok bool
	}{
		{"input_required with a state", `{"resultType":"input_required","inputRequests":{},"requestState":"s"}`, "s", true, true},
		{"input_required with a state only", `{"resultType":"input_required","requestState":"s"}`, "s", true, true},
		{"input_required without a state", `{"inputRequests":{"q":{}},"resultType":"input_required"}`, "", false, true},
		{"no resultType, inputRequests: a server of the 2025 era", `{"inputRequests":{"q":{}},"requestState":"s"}`, "s", true, true},
		{"an escaped marker", `{"resultType":"input\u005frequired"}`, "", false, true},
		{"complete, whatever else it carries", `{"resultType":"complete","inputRequests":{},"requestState":"s"}`, "s", true, false},
		{"no resultType and no inputRequests", `{"requestState":"s","content":[]}`, "s", true, false},
		{"inputRequests that are not an object", `{"inputRequests":null}`, "", false, false},
		{"the marker inside content", `{"content":[{"type":"text","text":"input_required"}]}`, "", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state, hasState, ok := inputRequired([]byte(tc.result))
			if state != tc.state || hasState != tc.hasState || ok != tc.ok {
				t.Fatalf("got (%q, %v, %v), want (%q, %v, %v)", state, hasState, ok, tc.state, tc.hasState, tc.ok)
			}
		})
	}
}

func TestAtTheCapTheRoundThatExpiresFirstIsForgotten(t *testing.T) {
	var r rounds
	now := time.Date(2026, 7, 28, 9, 0, 0, 0, time.UTC)
	key := func(i int) roundKey { return stateKey("s" + strconv.Itoa(i)) }
	for i := range 3 * maxWaitingRounds {
		r.add(key(i), waitingRound{expires: now.Add(time.Duration(i) * time.Second)}, now)
		if len(r.waiting) > maxWaitingRounds {
			t.Fatalf("%d rounds remembered, cap %d", len(r.waiting), maxWaitingRounds)
		}
	}
	if _, ok := r.waiting[key(0)]; ok {
		t.Fatal("the first round to expire was kept")
	}
	if _, ok := r.waiting[key(3*maxWaitingRounds-1)]; !ok {
		t.Fatal("the newest round was forgotten")
	}
	// Expired rounds go first, whatever their number.
	later := now.Add(time.Hour)
	r.add(stateKey("new"), waitingRound{expires: later.Add(roundTTL)}, later)
	if len(r.waiting) != 1 {
		t.Fatalf("%d rounds after all but one expired", len(r.waiting))
	}
}

func TestTopMemberFindsTheMemberAClientReads(t *testing.T) {
	for _, tc := range []struct{ obj, want string }{
		{`{"inputRequests":{"a":1}}`, `{"a":1}`},
		{` { "content" : [ {"text":"x\"}{"} ] , "InputRequests" : {"b":[1,{"c":"]"}]} } `, `{"b":[1,{"c":"]"}]}`},
		{`{"a":"\\","inputRequests":[]}`, `[]`},
		{`{"a":"\\\"","input\u0052equests":null}`, `null`},
		{`{"n":12,"t":true,"inputRequests":false}`, `false`},
		{`{"inputRequests":7}`, `7`},
		{`{"nested":{"inputRequests":{}}}`, ``},
		{`{"inputRequestsX":{}}`, ``},
		{`[{"inputRequests":{}}]`, ``},
	} {
		if got := string(topMember([]byte(tc.obj), "inputRequests")); got != tc.want {
			t.Errorf("topMember(%s) = %q, want %q", tc.obj, got, tc.want)
		}
	}
}

// FuzzTopMember checks topMember against the members eachMember splits.
func FuzzTopMember(f *testing.F) {
	for _, s := range []string{`{"inputRequests":{"a":1}}`, `{"a":"\\\"","InputRequests":[1,"]"]}`, `{"x":{"inputRequests":1},"y":2}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, obj []byte) {
		if !json.Valid(obj) || !utf8.Valid(obj) {
			return
		}
		var want []byte
		_ = eachMember(bytes.TrimSpace(obj), func(key, _, val []byte) error {
			if want == nil && strictjson.EqualFold(key, []byte("inputRequests")) {
				want = val
			}
			return nil
		})
		if got := topMember(obj, "inputRequests"); !bytes.Equal(got, want) {
			t.Fatalf("topMember(%s) = %q, eachMember found %q", obj, got, want)
		}
	})
}
