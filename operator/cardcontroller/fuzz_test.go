package cardcontroller

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/agentid/agentid/api/v1alpha1"
	"github.com/agentid/agentid/operator/internal/cardtest"
)

// FuzzServedCard feeds whatever an agent serves through the fetch, the
// verification and the status: the reconcile must succeed, never accept a
// card the test did not sign, never publish what is not a JSON object, and
// keep every message bounded and valid UTF-8.
func FuzzServedCard(f *testing.F) {
	seedCA := cardtest.NewCA(f, "example.org")
	seedSVID := seedCA.SVID(f, "spiffe://example.org/ns/fuzz/sa/weather-sa")
	signed := cardtest.Sign(f, cardtest.Card("weather"), seedSVID)
	for _, s := range []string{
		string(signed),
		strings.Replace(string(signed), "test agent", "evil agent", 1),
		`{}`, `[]`, `null`, ``, `{"name":"a","name":"b"}`, `{"Name":"a","name":"b"}`,
		`{"signatures":[{"protected":"!!","signature":"??"}]}`,
		`{"signatures":"x"}`, `{"n":1e999}`, `{"n":12345678901234567890}`,
		strings.Repeat("[", 100) + strings.Repeat("]", 100), "\xff\xfe", `{"s":"\ud800"}`,
	} {
		f.Add([]byte(s))
	}
	cas := &CAs{Ours: seedCA, Foreign: cardtest.NewCA(f, "partner.example")}
	scheme := newScheme(f) // once: registering client-go's types is slow under -fuzz
	f.Fuzz(func(t *testing.T, served []byte) {
		// Namespace fuzz is the seed SVID's: the signed seed binds.
		fx := newFixtureIn(t, newFakeClientWith(scheme), cas, "fuzz")
		fx.serve(served)
		_, got := fx.run(fx.card(&v1alpha1.IdentityBinding{Strict: true}))
		st := got.Status
		if v := st.ValidSignature; v != nil && *v && string(served) != string(signed) {
			t.Fatalf("a card the test did not sign verified: %q", served)
		}
		if st.Card != nil {
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(st.Card.Raw, &obj); err != nil {
				t.Fatalf("status.card is not a JSON object: %v", err)
			}
		}
		for _, c := range st.Conditions {
			checkMessage(t, "condition "+c.Type, c.Message)
			if c.Status == metav1.ConditionTrue && c.Type == v1alpha1.ConditionVerified && string(served) != string(signed) {
				t.Fatal("Verified=True for a card the test did not sign")
			}
		}
		checkMessage(t, "signatureVerificationDetails", st.SignatureVerificationDetails)
		if st.BindingStatus != nil {
			checkMessage(t, "bindingStatus.message", st.BindingStatus.Message)
		}
	})
}

func checkMessage(t *testing.T, what, s string) {
	t.Helper()
	if len(s) > maxMessage {
		t.Fatalf("%s is %d bytes, more than %d", what, len(s), maxMessage)
	}
	if !utf8.ValidString(s) {
		t.Fatalf("%s is not valid UTF-8: %q", what, s)
	}
}
