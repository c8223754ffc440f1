package cardcontroller

import (
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/agentid/agentid/api/v1alpha1"
	"github.com/agentid/agentid/operator/internal/cardtest"
)

const daemonSetName = "node-agent"

// createDaemonSet creates an agent DaemonSet whose pods run as testSA,
// ready on desired nodes when ready, and the Service that selects them,
// served by the fixture's card server.
func (f *fixture) createDaemonSet(ready bool) *appsv1.DaemonSet {
	f.t.Helper()
	selector, template := agentPods(daemonSetName)
	d := &appsv1.DaemonSet{
		ObjectMeta: f.agentMeta(daemonSetName),
		Spec:       appsv1.DaemonSetSpec{Selector: selector, Template: template},
	}
	f.create(d)
	f.setDaemonSetReady(d, ready)
	f.create(&corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: daemonSetName},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": daemonSetName},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 8000}},
		},
	})
	f.servers[daemonSetName] = f.server.URL
	return d
}

// setDaemonSetReady writes the status a DaemonSet controller would: three
// nodes, all ready or one not.
func (f *fixture) setDaemonSetReady(d *appsv1.DaemonSet, ready bool) {
	f.t.Helper()
	d.Status = appsv1.DaemonSetStatus{DesiredNumberScheduled: 3, CurrentNumberScheduled: 3, NumberReady: 2, ObservedGeneration: d.Generation}
	if ready {
		d.Status.NumberReady = 3
	}
	if err := f.c.Status().Update(f.ctx, d); err != nil {
		f.t.Fatal(err)
	}
}

// daemonSet reads the DaemonSet back.
func (f *fixture) daemonSet() *appsv1.DaemonSet {
	f.t.Helper()
	var d appsv1.DaemonSet
	if err := f.c.Get(f.ctx, types.NamespacedName{Namespace: f.ns, Name: daemonSetName}, &d); err != nil {
		f.t.Fatal(err)
	}
	return &d
}

// checkReadOnlyTarget: a card whose target is a DaemonSet is resolved,
// verified, bound and reported like any other, and the DaemonSet is never
// written: no label when verified, no removal when not, no restart when its
// SVID is about to expire, nothing on deletion.
func checkReadOnlyTarget(t *testing.T, c client.Client) {
	f := newFixture(t, c, newCAs(t))
	f.opts.ResignGracePeriod = 30 * time.Minute
	f.createDaemonSet(false)
	card := &v1alpha1.AgentCard{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: daemonSetName + "-card"},
		Spec: v1alpha1.AgentCardSpec{
			TargetRef:       v1alpha1.TargetRef{APIVersion: "apps/v1", Kind: "DaemonSet", Name: daemonSetName},
			IdentityBinding: &v1alpha1.IdentityBinding{Strict: true},
		},
	}
	f.create(card)
	generation := f.daemonSet().Generation

	// Not every node's pod is ready: not fetched yet.
	_, got := f.run(card)
	wantCondition(t, got, v1alpha1.ConditionSynced, metav1.ConditionFalse, v1alpha1.ReasonWorkloadNotReady)

	// Ready, with an SVID that expires within the grace period: verified
	// and bound to the DaemonSet's service account, but neither labelled
	// nor restarted.
	f.setDaemonSetReady(f.daemonSet(), true)
	now := time.Now()
	svid := f.ca.Ours.SVID(t, f.id(testTD, testSA), cardtest.Validity(now.Add(-time.Minute), now.Add(10*time.Minute)))
	f.serve(cardtest.Sign(t, cardtest.Card(daemonSetName), svid))
	_, got = f.run(card)
	wantCondition(t, got, v1alpha1.ConditionVerified, metav1.ConditionTrue, v1alpha1.ReasonSignatureVerified)
	wantCondition(t, got, v1alpha1.ConditionBound, metav1.ConditionTrue, v1alpha1.ReasonBound)
	if got.Status.Card == nil || got.Status.TargetRef == nil || got.Status.TargetRef.Kind != "DaemonSet" {
		t.Errorf("status.card %v, targetRef %+v; want the card published for the DaemonSet", got.Status.Card != nil, got.Status.TargetRef)
	}
	if got.Status.SignatureSpiffeID != f.id(testTD, testSA) {
		t.Errorf("signatureSpiffeId = %q", got.Status.SignatureSpiffeID)
	}
	assertUntouched := func(when string) {
		t.Helper()
		ds := f.daemonSet()
		if _, ok := ds.Spec.Template.Labels[v1alpha1.LabelSignatureVerified]; ok {
			t.Errorf("%s: the DaemonSet's pod template is labelled", when)
		}
		if v, ok := ds.Spec.Template.Annotations[AnnotationResignTrigger]; ok {
			t.Errorf("%s: the DaemonSet was restarted (%s=%q)", when, AnnotationResignTrigger, v)
		}
		if ds.Generation != generation {
			t.Errorf("%s: the DaemonSet's generation moved from %d to %d", when, generation, ds.Generation)
		}
	}
	assertUntouched("verified")
	if f.recorder.has("ResignTriggered") {
		t.Error("a ResignTriggered event for a read-only target")
	}

	// Tampered: refused and reported, still not written.
	f.serve(tamper(t, validCard(f)))
	_, got = f.run(card)
	wantCondition(t, got, v1alpha1.ConditionVerified, metav1.ConditionFalse, v1alpha1.ReasonSignatureInvalid)
	if got.Status.Card != nil {
		t.Error("a rejected card is published for a read-only target")
	}
	assertUntouched("refused")

	// Deleted: the finalizer goes without touching the DaemonSet.
	if err := f.c.Delete(f.ctx, got); err != nil {
		t.Fatal(err)
	}
	if _, err := f.reconciler().Reconcile(f.ctx, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(card)}); err != nil {
		t.Fatalf("finalizing: %v", err)
	}
	var gone v1alpha1.AgentCard
	if err := f.c.Get(f.ctx, client.ObjectKeyFromObject(card), &gone); err == nil {
		t.Errorf("the card outlived its finalizer: %v", gone.Finalizers)
	}
	assertUntouched("after the card's deletion")
}

func TestReadOnlyTargetFakeClient(t *testing.T) { checkReadOnlyTarget(t, newFakeClient(t)) }

func TestReadOnlyTargetEnvtest(t *testing.T) { checkReadOnlyTarget(t, apiClient(t)) }
