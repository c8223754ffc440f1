package enforce

import (
	"crypto/sha256"
	"testing"
	"time"
)

func TestARoundTicketIsBoundToItsSessionAndPolicy(t *testing.T) {
	rt := roundTickets{key: NewRoundKey()}
	now := time.Unix(1_800_000_000, 0)
	d := decided{tool: sha256.Sum256([]byte("run")), args: sha256.Sum256([]byte(`{}`)), policy: "p1", round: 1}
	ticket := rt.issue(d, 1, "session-a", now)
	if _, err := rt.parse(ticket, "p1", "session-a", now); err != nil {
		t.Fatalf("the ticket's own session and policy: %v", err)
	}
	for _, tc := range []struct{ name, policy, session string }{
		{"another session", "p1", "session-b"},
		{"no session", "p1", ""},
		{"another policy", "p2", "session-a"},
	} {
		if _, err := rt.parse(ticket, tc.policy, tc.session, now); err == nil {
			t.Errorf("%s: honoured", tc.name)
		}
	}
	other := roundTickets{key: NewRoundKey()}
	if _, err := other.parse(ticket, "p1", "session-a", now); err == nil {
		t.Error("another key: honoured")
	}
}
