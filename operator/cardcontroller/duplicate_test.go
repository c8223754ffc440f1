package cardcontroller

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/agentid/agentid/api/v1alpha1"
)

// cardAt creates an AgentCard named name for target with the given
// creation time (the fake client keeps it as given).
func (f *fixture) cardAt(name string, created time.Time, target v1alpha1.TargetRef) *v1alpha1.AgentCard {
	f.t.Helper()
	c := &v1alpha1.AgentCard{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name, CreationTimestamp: metav1.NewTime(created.Truncate(time.Second))},
		Spec: v1alpha1.AgentCardSpec{
			TargetRef:       target,
			IdentityBinding: &v1alpha1.IdentityBinding{Strict: true},
		},
	}
	f.create(c)
	return c
}

func (f *fixture) target() v1alpha1.TargetRef {
	return v1alpha1.TargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: f.name}
}

func TestTheOldestCardOwnsTheWorkloadWhateverTheReconcileOrder(t *testing.T) {
	t0 := time.Now().Add(-time.Hour)
	tests := []struct {
		name      string
		cards     []string    // created in this order
		created   []time.Time // their creation times
		wantOwner string
	}{
		{"the older card wins", []string{"b-card", "a-card"}, []time.Time{t0, t0.Add(time.Minute)}, "b-card"},
		{"a tie of creation times goes to the first name", []string{"b-card", "a-card"}, []time.Time{t0, t0}, "a-card"},
		{"three cards: the oldest wins, then the name", []string{"c-card", "b-card", "a-card"}, []time.Time{t0.Add(time.Minute), t0, t0}, "a-card"},
	}
	for _, tt := range tests {
		for _, order := range []string{"in creation order", "in reverse"} {
			t.Run(tt.name+", reconciled "+order, func(t *testing.T) {
				f := newFixture(t, newFakeClient(t), newCAs(t))
				f.serve(validCard(f))
				var cards []*v1alpha1.AgentCard
				for i, name := range tt.cards {
					cards = append(cards, f.cardAt(name, tt.created[i], f.target()))
				}
				run := append([]*v1alpha1.AgentCard(nil), cards...)
				if order == "in reverse" {
					for i, j := 0, len(run)-1; i < j; i, j = i+1, j-1 {
						run[i], run[j] = run[j], run[i]
					}
				}
				for _, c := range run {
					f.run(c)
				}
				for _, c := range cards {
					got := f.get(c)
					if c.Name == tt.wantOwner {
						wantCondition(t, got, v1alpha1.ConditionVerified, metav1.ConditionTrue, v1alpha1.ReasonSignatureVerified)
						continue
					}
					wantCondition(t, got, v1alpha1.ConditionSynced, metav1.ConditionFalse, v1alpha1.ReasonDuplicateTarget)
					want := "an AgentCard already targets Deployment " + f.name + " in namespace " + f.ns + ": " + tt.wantOwner
					if msg := condition(got, v1alpha1.ConditionSynced).Message; msg != want {
						t.Errorf("%s: Synced message %q, want %q", c.Name, msg, want)
					}
					wantCondition(t, got, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonNotSynced)
				}
				if f.server.Fetches() != 1 {
					t.Errorf("%d fetches, want 1: a duplicate fetched the card", f.server.Fetches())
				}
			})
		}
	}
}

func TestADuplicateIsAnyVersionOfTheSameGroupKindAndName(t *testing.T) {
	f := newFixture(t, newFakeClient(t), newCAs(t))
	f.serve(validCard(f))
	t0 := time.Now().Add(-time.Hour)
	owner := f.cardAt("owner", t0, f.target())
	f.run(owner)
	tests := []struct {
		name   string
		target v1alpha1.TargetRef
		want   string // the Synced reason
	}{
		{"another version of apps", v1alpha1.TargetRef{APIVersion: "apps/v1beta2", Kind: "Deployment", Name: f.name}, v1alpha1.ReasonDuplicateTarget},
		{"another group", v1alpha1.TargetRef{APIVersion: "example.org/v1", Kind: "Deployment", Name: f.name}, v1alpha1.ReasonWorkloadError},
		{"another kind", v1alpha1.TargetRef{APIVersion: "apps/v1", Kind: "StatefulSet", Name: f.name}, v1alpha1.ReasonWorkloadNotFound},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := f.cardAt("other-"+string(rune('a'+i)), t0.Add(time.Minute), tt.target)
			_, got := f.run(c)
			wantCondition(t, got, v1alpha1.ConditionSynced, metav1.ConditionFalse, tt.want)
		})
	}
}

// TestACardOvertakenByAnOlderOneKeepsNothingOfItsVerification: a card that
// owned its workload until an older card was moved onto the same workload
// becomes a duplicate, and its status no longer shows a card, a signature
// or a binding.
func TestACardOvertakenByAnOlderOneKeepsNothingOfItsVerification(t *testing.T) {
	f := newFixture(t, newFakeClient(t), newCAs(t))
	f.serve(validCard(f))
	f.createDeployment("elsewhere", true)
	t0 := time.Now().Add(-time.Hour)
	older := f.cardAt("older", t0, v1alpha1.TargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "elsewhere"})
	younger := f.cardAt("younger", t0.Add(time.Minute), f.target())
	_, got := f.run(younger)
	wantCondition(t, got, v1alpha1.ConditionVerified, metav1.ConditionTrue, v1alpha1.ReasonSignatureVerified)
	if got.Status.Card == nil {
		t.Fatal("setup: the owner's card is not published")
	}

	o := f.get(older)
	o.Spec.TargetRef = f.target()
	if err := f.c.Update(f.ctx, o); err != nil {
		t.Fatal(err)
	}
	_, got = f.run(younger)
	wantCondition(t, got, v1alpha1.ConditionSynced, metav1.ConditionFalse, v1alpha1.ReasonDuplicateTarget)
	st := got.Status
	if st.Card != nil || st.CardID != "" || st.ValidSignature != nil || st.SignatureSpiffeID != "" ||
		st.SignatureIdentityMatch != nil || st.BindingStatus != nil || st.ExpectedSpiffeID != "" || st.TargetRef != nil {
		t.Errorf("the duplicate's status keeps its former verification: %+v", st)
	}
	for _, typ := range []string{v1alpha1.ConditionSignatureVerified, v1alpha1.ConditionBound, v1alpha1.ConditionVerified} {
		if c := condition(got, typ); c != nil {
			t.Errorf("the duplicate keeps condition %s=%s", typ, c.Status)
		}
	}
	if !f.recorder.has(v1alpha1.ReasonDuplicateTarget) {
		t.Errorf("no DuplicateTarget event; events: %v", f.recorder.events)
	}
	// The label is the owner's to keep: the duplicate leaves it.
	if v, _ := f.label(f.name); v != "true" {
		t.Error("becoming a duplicate removed the label")
	}
	_, owner := f.run(older)
	wantCondition(t, owner, v1alpha1.ConditionVerified, metav1.ConditionTrue, v1alpha1.ReasonSignatureVerified)

	n := len(f.recorder.events)
	f.run(younger)
	if len(f.recorder.events) != n {
		t.Errorf("an unchanged duplicate emitted events again: %v", f.recorder.events[n:])
	}
}

// TestDeletingTheOwnerHandsTheWorkloadToTheDuplicate: the owner's deletion
// leaves the label to the card that takes over, which verifies on its own.
func TestDeletingTheOwnerHandsTheWorkloadToTheDuplicate(t *testing.T) {
	f := newFixture(t, newFakeClient(t), newCAs(t))
	f.serve(validCard(f))
	t0 := time.Now().Add(-time.Hour)
	owner := f.cardAt("owner", t0, f.target())
	dup := f.cardAt("duplicate", t0.Add(time.Minute), f.target())
	f.run(owner)
	_, got := f.run(dup)
	wantCondition(t, got, v1alpha1.ConditionSynced, metav1.ConditionFalse, v1alpha1.ReasonDuplicateTarget)

	if err := f.c.Delete(f.ctx, f.get(owner)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.reconciler().Reconcile(f.ctx, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(owner)}); err != nil {
		t.Fatal(err)
	}
	if v, _ := f.label(f.name); v != "true" {
		t.Error("the owner's deletion removed the label although another card takes the workload over")
	}
	_, got = f.run(dup)
	wantCondition(t, got, v1alpha1.ConditionVerified, metav1.ConditionTrue, v1alpha1.ReasonSignatureVerified)
	if msg := condition(got, v1alpha1.ConditionSynced).Message; strings.Contains(msg, "already targets") {
		t.Errorf("Synced message %q still names the deleted owner", msg)
	}

	// The last card's deletion removes the label.
	if err := f.c.Delete(f.ctx, got); err != nil {
		t.Fatal(err)
	}
	if _, err := f.reconciler().Reconcile(f.ctx, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(dup)}); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.label(f.name); ok {
		t.Error("the label outlived the workload's last card")
	}
}

// TestATakeoverByACardThatFailsRemovesTheLabel: the successor owns the
// label from the handover on, so a successor whose card does not verify
// (enforce mode) removes it.
func TestATakeoverByACardThatFailsRemovesTheLabel(t *testing.T) {
	f := newFixture(t, newFakeClient(t), newCAs(t))
	f.serve(validCard(f))
	t0 := time.Now().Add(-time.Hour)
	owner := f.cardAt("owner", t0, f.target())
	f.run(owner)
	// The successor binds to another service account: the same card does
	// not verify for it.
	dup := &v1alpha1.AgentCard{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "successor", CreationTimestamp: metav1.NewTime(t0.Add(time.Minute))},
		Spec: v1alpha1.AgentCardSpec{TargetRef: f.target(), IdentityBinding: &v1alpha1.IdentityBinding{
			Strict: true, ExpectedSpiffeID: f.id(testTD, "someone-else"),
		}},
	}
	f.create(dup)
	f.run(dup)
	if err := f.c.Delete(f.ctx, f.get(owner)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.reconciler().Reconcile(f.ctx, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(owner)}); err != nil {
		t.Fatal(err)
	}
	_, got := f.run(dup)
	wantCondition(t, got, v1alpha1.ConditionVerified, metav1.ConditionFalse, v1alpha1.ReasonNotVerified)
	if _, ok := f.label(f.name); ok {
		t.Error("the successor's failed verification left the label")
	}
}
