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

// FuzzRoundTicket: a validation server parses whatever a caller sends as
// round_ticket. Nothing but a ticket this key issued for this policy and
// session parses, and parsing never panics.
func FuzzRoundTicket(f *testing.F) {
	rt := roundTickets{key: make([]byte, 32)}
	now := time.Unix(1_800_000_000, 0)
	d := decided{tool: sha256.Sum256([]byte("run")), args: sha256.Sum256([]byte(`{}`)), policy: "p"}
	good := rt.issue(d, 1, "s", now)
	f.Add(good)
	f.Add("r1.")
	f.Add("r1..")
	f.Add("r1.AAAA.BBBB")
	f.Add(good[:len(good)-1])
	f.Fuzz(func(t *testing.T, s string) {
		// One ticket has one spelling: what parses is exactly what the
		// key would have issued.
		if tk, err := rt.parse(s, "p", "s", now); err == nil && rt.encode(tk, "p", "s") != s {
			t.Fatalf("another spelling of a ticket parsed: %q", s)
		}
	})
}

// FuzzSealedState: the gateway opens whatever a client sends back as a
// request state. What opens with its seal intact is exactly what the key
// would have sealed, and opening never panics.
func FuzzSealedState(f *testing.F) {
	rt := roundTickets{key: make([]byte, 32)}
	now := time.Unix(1_800_000_000, 0)
	d := decided{tool: sha256.Sum256([]byte("run")), args: sha256.Sum256([]byte(`{}`)), policy: "p", session: "s", round: 1}
	f.Add(rt.seal(d, true, "server-state", now))
	f.Add(rt.seal(d, false, "", now))
	f.Add("agentid.rs1.")
	f.Add("agentid.rs1.AAAA.BBBB")
	f.Add("not ours")
	f.Fuzz(func(t *testing.T, s string) {
		r, ours, err := rt.open(s, "p", "s", now)
		if !ours {
			if r != (sealedRound{}) {
				t.Fatalf("a state not ours opened to %+v", r)
			}
			return
		}
		if err == nil && rt.encodeSealed(r, "p", "s") != s {
			t.Fatalf("another spelling of a sealed state opened: %q", s)
		}
		if !r.hasState && r.state != "" {
			t.Fatalf("a state without one carries %q", r.state)
		}
	})
}
