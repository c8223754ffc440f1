package cardcontroller

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"

	"github.com/agentid/agentid/api/v1alpha1"
	"github.com/agentid/agentid/operator/internal/cardtest"
)

// Edge cases, on the fake client.

func TestFailuresBeforeVerificationAreReportedInSynced(t *testing.T) {
	cas := newCAs(t)
	tests := []struct {
		name        string
		setup       func(f *fixture) *v1alpha1.AgentCard
		wantReason  string
		wantRequeue time.Duration
		wantBinding string // bindingStatus.reason, "" for none
	}{{
		name: "a workload that is not ready is waited for (10s) and not fetched",
		setup: func(f *fixture) *v1alpha1.AgentCard {
			f.setDeploymentReadyByName(f.name, false)
			return f.card(nil)
		},
		wantReason: v1alpha1.ReasonWorkloadNotReady, wantRequeue: retryNotReady,
	}, {
		name: "a missing workload is WorkloadNotFound and, with identityBinding, AgentNotFound",
		setup: func(f *fixture) *v1alpha1.AgentCard {
			c := &v1alpha1.AgentCard{
				ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "ghost-card"},
				Spec: v1alpha1.AgentCardSpec{
					TargetRef:       v1alpha1.TargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "ghost"},
					IdentityBinding: &v1alpha1.IdentityBinding{Strict: true},
				},
			}
			f.create(c)
			return c
		},
		wantReason: v1alpha1.ReasonWorkloadNotFound, wantRequeue: retrySlow, wantBinding: v1alpha1.ReasonAgentNotFound,
	}, {
		name: "a workload without the agent label is NotAgentWorkload",
		setup: func(f *fixture) *v1alpha1.AgentCard {
			f.patchDeploymentLabels(map[string]*string{v1alpha1.LabelAgentType: nil})
			return f.card(nil)
		},
		wantReason: v1alpha1.ReasonNotAgentWorkload, wantRequeue: retrySlow,
	}, {
		name: "a workload without a protocol label is NoProtocol",
		setup: func(f *fixture) *v1alpha1.AgentCard {
			f.patchDeploymentLabels(map[string]*string{v1alpha1.LabelProtocolPrefix + v1alpha1.ProtocolA2A: nil})
			return f.card(nil)
		},
		wantReason: v1alpha1.ReasonNoProtocol, wantRequeue: retrySlow,
	}, {
		name: "a workload of another protocol is not fetched",
		setup: func(f *fixture) *v1alpha1.AgentCard {
			mcp := ""
			f.patchDeploymentLabels(map[string]*string{v1alpha1.LabelProtocolPrefix + v1alpha1.ProtocolA2A: nil, v1alpha1.LabelProtocolPrefix + "mcp": &mcp})
			return f.card(nil)
		},
		wantReason: v1alpha1.ReasonFetchFailed, wantRequeue: retrySlow,
	}, {
		name: "a workload no Service selects is ServiceNotFound (30s)",
		setup: func(f *fixture) *v1alpha1.AgentCard {
			if err := f.c.Delete(f.ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: f.name}}); err != nil {
				t.Fatal(err)
			}
			return f.card(nil)
		},
		wantReason: v1alpha1.ReasonServiceNotFound, wantRequeue: retryService,
	}, {
		name: "a target kind other than Deployment or StatefulSet is WorkloadError",
		setup: func(f *fixture) *v1alpha1.AgentCard {
			c := &v1alpha1.AgentCard{
				ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "job-card"},
				Spec:       v1alpha1.AgentCardSpec{TargetRef: v1alpha1.TargetRef{APIVersion: "batch/v1", Kind: "Job", Name: "j"}},
			}
			f.create(c)
			return c
		},
		wantReason: v1alpha1.ReasonWorkloadError, wantRequeue: retrySlow,
	}, {
		name: "an agent answering 500 is FetchFailed",
		setup: func(f *fixture) *v1alpha1.AgentCard {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				http.Error(w, "secret stack trace", http.StatusInternalServerError)
			}))
			t.Cleanup(ts.Close)
			f.servers[f.name] = ts.URL
			return f.card(nil)
		},
		wantReason: v1alpha1.ReasonFetchFailed, wantRequeue: retrySlow,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, newFakeClient(t), cas)
			f.serve(validCard(f))
			card := tt.setup(f)
			res, got := f.run(card)
			wantCondition(t, got, v1alpha1.ConditionSynced, metav1.ConditionFalse, tt.wantReason)
			wantCondition(t, got, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonNotSynced)
			if res.RequeueAfter != tt.wantRequeue {
				t.Errorf("RequeueAfter = %v, want %v", res.RequeueAfter, tt.wantRequeue)
			}
			if c := condition(got, v1alpha1.ConditionSynced); c != nil && strings.Contains(c.Message, "secret") {
				t.Errorf("the Synced message %q carries the agent's response body", c.Message)
			}
			if tt.wantReason == v1alpha1.ReasonWorkloadNotReady && f.server.Fetches() != 0 {
				t.Errorf("the card was fetched %d times from a workload that is not ready", f.server.Fetches())
			}
			switch {
			case tt.wantBinding == "" && got.Status.BindingStatus != nil:
				t.Errorf("bindingStatus = %+v, want none", got.Status.BindingStatus)
			case tt.wantBinding != "":
				if b := got.Status.BindingStatus; b == nil || b.Reason != tt.wantBinding || b.Bound {
					t.Errorf("bindingStatus = %+v, want %s", b, tt.wantBinding)
				}
				wantCondition(t, got, v1alpha1.ConditionBound, metav1.ConditionFalse, tt.wantBinding)
				if !f.recorder.has("AgentNotFound") {
					t.Errorf("no AgentNotFound event; events: %v", f.recorder.events)
				}
			}
		})
	}
}

func TestAnUnavailableTrustBundleIsReportedAndLeavesTheLabelAlone(t *testing.T) {
	f := newFixture(t, newFakeClient(t), newCAs(t))
	f.serve(validCard(f))
	card := f.card(&v1alpha1.IdentityBinding{Strict: true})
	f.run(card)
	if v, _ := f.label(f.name); v != "true" {
		t.Fatal("setup: not labelled")
	}
	f.bundle.err = errors.New(`trustbundle: ConfigMap spire/spire-bundle: key "bundle.spiffe" not found or empty`)
	res, got := f.run(card)
	wantCondition(t, got, v1alpha1.ConditionSynced, metav1.ConditionFalse, v1alpha1.ReasonTrustBundleUnavailable)
	wantCondition(t, got, v1alpha1.ConditionSignatureVerified, metav1.ConditionUnknown, v1alpha1.ReasonTrustBundleUnavailable)
	wantCondition(t, got, v1alpha1.ConditionVerified, metav1.ConditionUnknown, v1alpha1.ReasonTrustBundleUnavailable)
	wantCondition(t, got, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonNotSynced)
	if c := condition(got, v1alpha1.ConditionSynced); !strings.Contains(c.Message, "bundle.spiffe") {
		t.Errorf("Synced message %q does not say what is wrong with the bundle", c.Message)
	}
	if v, ok := f.label(f.name); !ok || v != "true" {
		t.Error("an unavailable bundle removed the verified label")
	}
	if res.RequeueAfter != retryBundle {
		t.Errorf("RequeueAfter = %v, want %v", res.RequeueAfter, retryBundle)
	}
}

func TestTheStatusIsWrittenOnlyWhenItChanges(t *testing.T) {
	f := newFixture(t, newFakeClient(t), newCAs(t))
	f.serve(validCard(f))
	card := f.card(&v1alpha1.IdentityBinding{Strict: true})
	_, first := f.run(card)
	_, second := f.run(card)
	if first.ResourceVersion != second.ResourceVersion {
		t.Errorf("an unchanged card was written again: resourceVersion %s -> %s", first.ResourceVersion, second.ResourceVersion)
	}
	if f.server.Fetches() != 2 {
		t.Errorf("fetches = %d, want one per reconcile", f.server.Fetches())
	}

	// A re-signed card with new content is written, and its lastSyncTime
	// and cardId move.
	f.opts.Now = func() time.Time { return time.Now().Add(time.Minute) }
	f.reconcile = nil
	f.serve(cardtest.Sign(t, []byte(strings.Replace(string(cardtest.Card(f.name)), `"1.0.0"`, `"1.1.0"`, 1)), f.ca.Ours.SVID(t, f.id(testTD, testSA))))
	_, third := f.run(card)
	if third.ResourceVersion == second.ResourceVersion || third.Status.CardID == second.Status.CardID {
		t.Error("a changed card did not change the status")
	}
	if !third.Status.LastSyncTime.After(second.Status.LastSyncTime.Time) {
		t.Errorf("lastSyncTime %v did not move past %v", third.Status.LastSyncTime, second.Status.LastSyncTime)
	}
	if !f.recorder.has("CardContentChanged") {
		t.Errorf("no CardContentChanged event; events: %v", f.recorder.events)
	}
	if b := third.Status.BindingStatus; b.LastEvaluationTime == nil || !b.LastEvaluationTime.Equal(second.Status.BindingStatus.LastEvaluationTime) {
		t.Errorf("lastEvaluationTime moved (%v -> %v) though the binding did not change", second.Status.BindingStatus.LastEvaluationTime, b.LastEvaluationTime)
	}
}

func TestAVerifiedCardIsLookedAtAgainWhenItsSVIDExpires(t *testing.T) {
	f := newFixture(t, newFakeClient(t), newCAs(t))
	now := time.Now()
	svid := f.ca.Ours.SVID(t, f.id(testTD, testSA), cardtest.Validity(now.Add(-time.Minute), now.Add(10*time.Second)))
	f.serve(cardtest.Sign(t, cardtest.Card(f.name), svid))
	res, got := f.run(f.card(nil))
	wantCondition(t, got, v1alpha1.ConditionVerified, metav1.ConditionTrue, v1alpha1.ReasonSignatureVerified)
	if res.RequeueAfter > 12*time.Second || res.RequeueAfter < time.Second {
		t.Errorf("RequeueAfter = %v, want about the 10s left to the SVID", res.RequeueAfter)
	}
}

func TestDeletingTheCardRemovesTheLabelAndTheFinalizer(t *testing.T) {
	f := newFixture(t, newFakeClient(t), newCAs(t))
	f.serve(validCard(f))
	card := f.card(nil)
	_, got := f.run(card)
	if len(got.Finalizers) != 1 || got.Finalizers[0] != Finalizer {
		t.Fatalf("finalizers = %v, want [%s]", got.Finalizers, Finalizer)
	}
	if v, _ := f.label(f.name); v != "true" {
		t.Fatal("setup: not labelled")
	}
	if err := f.c.Delete(f.ctx, got); err != nil {
		t.Fatal(err)
	}
	if _, err := f.reconciler().Reconcile(f.ctx, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(card)}); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.label(f.name); ok {
		t.Error("the verified label outlived its AgentCard")
	}
	var gone v1alpha1.AgentCard
	if err := f.c.Get(f.ctx, client.ObjectKeyFromObject(card), &gone); err == nil {
		t.Errorf("the AgentCard still exists with finalizers %v", gone.Finalizers)
	}
}

func TestWithoutRequireSignatureCardsAreFetchedButNotVerified(t *testing.T) {
	f := newFixture(t, newFakeClient(t), newCAs(t))
	f.opts.RequireSignature = false
	f.serve(tamper(t, validCard(f)))
	_, got := f.run(f.card(nil))
	wantCondition(t, got, v1alpha1.ConditionSynced, metav1.ConditionTrue, v1alpha1.ReasonSyncSucceeded)
	wantCondition(t, got, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReadyToServe)
	if got.Status.ValidSignature != nil || hasCondition(got, v1alpha1.ConditionVerified) {
		t.Error("the signature was evaluated without --require-a2a-signature")
	}
	if _, ok := f.label(f.name); ok {
		t.Error("the workload was labelled without --require-a2a-signature")
	}
}

func TestAStatefulSetIsResolvedAndLabelled(t *testing.T) {
	f := newFixture(t, newFakeClient(t), newCAs(t))
	three := int32(3)
	s := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "memory", Labels: map[string]string{
			v1alpha1.LabelAgentType: v1alpha1.AgentTypeAgent, v1alpha1.LabelProtocolDeprecated: v1alpha1.ProtocolA2A,
		}},
		Spec: appsv1.StatefulSetSpec{
			Replicas: &three,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "memory"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "memory", "tier": "agents"}},
				Spec:       corev1.PodSpec{ServiceAccountName: "memory-sa", Containers: []corev1.Container{{Name: "a", Image: "x"}}},
			},
		},
	}
	f.create(s)
	f.create(&corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "memory-a2a"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "memory"}, Ports: []corev1.ServicePort{{Port: 9000}}},
	})
	srv := cardtest.NewServer(t, f.signedCard(f.ca.Ours, f.id(testTD, "memory-sa")))
	f.servers["memory-a2a"] = srv.URL
	card := &v1alpha1.AgentCard{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "memory-card"},
		Spec: v1alpha1.AgentCardSpec{
			TargetRef:       v1alpha1.TargetRef{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "memory"},
			IdentityBinding: &v1alpha1.IdentityBinding{Strict: true},
		},
	}
	f.create(card)

	_, got := f.run(card)
	wantCondition(t, got, v1alpha1.ConditionSynced, metav1.ConditionFalse, v1alpha1.ReasonWorkloadNotReady)

	s.Status = appsv1.StatefulSetStatus{Replicas: 3, ReadyReplicas: 3}
	if err := f.c.Status().Update(f.ctx, s); err != nil {
		t.Fatal(err)
	}
	_, got = f.run(card)
	wantCondition(t, got, v1alpha1.ConditionVerified, metav1.ConditionTrue, v1alpha1.ReasonSignatureVerified)
	var after appsv1.StatefulSet
	if err := f.c.Get(f.ctx, types.NamespacedName{Namespace: f.ns, Name: "memory"}, &after); err != nil {
		t.Fatal(err)
	}
	if after.Spec.Template.Labels[v1alpha1.LabelSignatureVerified] != "true" || after.Spec.Template.Labels["tier"] != "agents" {
		t.Errorf("pod template labels = %v, want the verified label added and the others kept", after.Spec.Template.Labels)
	}
}

func TestReadinessRules(t *testing.T) {
	three := int32(3)
	tests := []struct {
		name string
		got  bool
		want bool
	}{
		{"a Deployment with Available=True is ready", deploymentReady(&appsv1.Deployment{Status: appsv1.DeploymentStatus{Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue}}}}), true},
		{"a Deployment with Available=False is not ready", deploymentReady(&appsv1.Deployment{Status: appsv1.DeploymentStatus{Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionFalse}}}}), false},
		{"a Deployment without conditions is not ready", deploymentReady(&appsv1.Deployment{}), false},
		{"a StatefulSet with all replicas ready is ready", statefulSetReady(&appsv1.StatefulSet{Spec: appsv1.StatefulSetSpec{Replicas: &three}, Status: appsv1.StatefulSetStatus{ReadyReplicas: 3}}), true},
		{"a StatefulSet with some replicas ready is not ready", statefulSetReady(&appsv1.StatefulSet{Spec: appsv1.StatefulSetSpec{Replicas: &three}, Status: appsv1.StatefulSetStatus{ReadyReplicas: 2}}), false},
		{"a StatefulSet scaled to zero is not ready", statefulSetReady(&appsv1.StatefulSet{Spec: appsv1.StatefulSetSpec{Replicas: new(int32)}}), false},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %v", tt.name, tt.got)
		}
	}
}

func TestProtocolChoiceIsDeterministic(t *testing.T) {
	tests := []struct {
		name   string
		labels map[string]string
		want   string
	}{
		{"a2a wins among several protocols", map[string]string{"protocol.kagenti.io/mcp": "", "protocol.kagenti.io/a2a": "", "protocol.kagenti.io/acp": ""}, "a2a"},
		{"otherwise the first by name", map[string]string{"protocol.kagenti.io/mcp": "", "protocol.kagenti.io/acp": ""}, "acp"},
		{"the deprecated kagenti.io/protocol label is read", map[string]string{"kagenti.io/protocol": "a2a"}, "a2a"},
		{"the deprecated kagenti.io/agent-protocol label is read", map[string]string{"kagenti.io/agent-protocol": "a2a"}, "a2a"},
	}
	for _, tt := range tests {
		for range 20 { // map order varies between iterations
			w := &workload{obj: &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Labels: tt.labels}}}
			got, err := protocol(w)
			if err != nil || got != tt.want {
				t.Fatalf("%s: protocol = %q, %v; want %q", tt.name, got, err, tt.want)
			}
		}
	}
}

func TestServiceSelection(t *testing.T) {
	f := newFixture(t, newFakeClient(t), newCAs(t))
	// Another Service selects the same pods and sorts first; the one named
	// like the workload is still chosen.
	f.create(&corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "aaa-metrics"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": f.name}, Ports: []corev1.ServicePort{{Port: 9090}}},
	})
	// A Service without a selector (its endpoints managed by hand) never
	// counts.
	f.create(&corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "aa-manual"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 1}}},
	})
	r := f.reconciler()
	var d appsv1.Deployment
	if err := f.c.Get(f.ctx, types.NamespacedName{Namespace: f.ns, Name: f.name}, &d); err != nil {
		t.Fatal(err)
	}
	s, err := r.service(f.ctx, f.ns, &workload{obj: &d, kind: "Deployment", template: &d.Spec.Template})
	if err != nil || s.Name != f.name {
		t.Fatalf("service = %v, %v; want %s", s, err, f.name)
	}

	tests := []struct {
		name  string
		ports []corev1.ServicePort
		want  string
	}{
		{"the port named a2a wins", []corev1.ServicePort{{Name: "metrics", Port: 9090}, {Name: "http", Port: 8080}, {Name: "a2a", Port: 8000}}, "http://weather.agents.svc:8000"},
		{"else the port named http", []corev1.ServicePort{{Name: "metrics", Port: 9090}, {Name: "http", Port: 8080}}, "http://weather.agents.svc:8080"},
		{"else the first port", []corev1.ServicePort{{Name: "metrics", Port: 9090}}, "http://weather.agents.svc:9090"},
	}
	for _, tt := range tests {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "agents", Name: "weather"}, Spec: corev1.ServiceSpec{Ports: tt.ports}}
		if got := ClusterServiceURL(svc, servicePort(svc)); got != tt.want {
			t.Errorf("%s: URL = %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestMessagesAreBounded(t *testing.T) {
	long := strings.Repeat("é", 2000)
	got := clip(long)
	if len(got) > maxMessage || !strings.HasSuffix(got, "…") || !strings.HasPrefix(got, "é") {
		t.Errorf("clip gave %d bytes", len(got))
	}
	if got := clip("short"); got != "short" {
		t.Errorf("clip(short) = %q", got)
	}
	for i := range len(got) {
		if !utf8RuneStart(got[i]) && i == 0 {
			t.Fatal("clip cut inside a rune")
		}
	}
}

func TestNewRefusesAnIncompleteSetup(t *testing.T) {
	c := newFakeClient(t)
	if _, err := New(nil, nil, &eventLog{}, Options{}); err == nil {
		t.Error("New accepted no client")
	}
	if _, err := New(c, nil, nil, Options{}); err == nil {
		t.Error("New accepted no event recorder")
	}
	if _, err := New(c, nil, &eventLog{}, Options{RequireSignature: true}); err == nil {
		t.Error("New accepted --require-a2a-signature without a trust bundle")
	}
	cas := newCAs(t)
	if _, err := New(c, nil, &eventLog{}, Options{SVIDs: cas.Ours.SVID(t, "spiffe://example.org/op")}); err == nil {
		t.Error("New accepted mTLS fetching without signature verification")
	}
}

func condition(card *v1alpha1.AgentCard, typ string) *metav1.Condition {
	for i := range card.Status.Conditions {
		if card.Status.Conditions[i].Type == typ {
			return &card.Status.Conditions[i]
		}
	}
	return nil
}

func TestMetricsCountVerificationsByResultAndAuditMode(t *testing.T) {
	cas := newCAs(t)
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	run := func(audit bool, binding *v1alpha1.IdentityBinding, card func(*fixture) []byte) {
		t.Helper()
		f := newFixture(t, newFakeClient(t), cas)
		f.opts.Metrics, f.opts.AuditMode = m, audit
		f.serve(card(f))
		f.run(f.card(binding))
	}
	run(false, nil, validCard)
	run(false, nil, func(f *fixture) []byte { return tamper(t, validCard(f)) })
	run(true, nil, func(f *fixture) []byte { return tamper(t, validCard(f)) })
	run(false, &v1alpha1.IdentityBinding{TrustDomain: "partner.example"}, validCard)

	for _, tt := range []struct {
		result, audit string
		want          float64
	}{{"success", "false", 2}, {"failed", "false", 1}, {"failed", "true", 1}} {
		if got := testutil.ToFloat64(m.verifications.WithLabelValues("x5c", tt.result, tt.audit)); got != tt.want {
			t.Errorf("a2a_signature_verification_total{result=%s,audit_mode=%s} = %v, want %v", tt.result, tt.audit, got, tt.want)
		}
	}
	if got := testutil.ToFloat64(m.tdMismatch); got != 1 {
		t.Errorf("kagenti_x5c_binding_trust_domain_mismatch_total = %v, want 1", got)
	}
	if n := testutil.CollectAndCount(m.duration); n != 1 {
		t.Errorf("duration series = %d, want 1", n)
	}
	if _, err := NewMetrics(reg); err == nil {
		t.Error("registering the metrics twice was accepted")
	}
}

func TestEventsReportTransitions(t *testing.T) {
	f := newFixture(t, newFakeClient(t), newCAs(t))
	f.serve(validCard(f))
	card := f.card(&v1alpha1.IdentityBinding{Strict: true})
	f.run(card)
	for _, reason := range []string{"SignatureEvaluated", "BindingEvaluated"} {
		if !f.recorder.has(reason) {
			t.Errorf("no %s event; events: %v", reason, f.recorder.events)
		}
	}
	n := len(f.recorder.events)
	f.run(card)
	if len(f.recorder.events) != n {
		t.Errorf("an unchanged reconcile emitted events: %v", f.recorder.events[n:])
	}
	f.serve(tamper(t, validCard(f)))
	f.run(card)
	for _, reason := range []string{"SignatureFailed", "BindingFailed", "LabelRemoved"} {
		if !f.recorder.has(reason) {
			t.Errorf("no %s event; events: %v", reason, f.recorder.events)
		}
	}
}

func TestASecondCardForTheSameWorkloadIsRefusedAndNeverTouchesTheLabel(t *testing.T) {
	f := newFixture(t, newFakeClient(t), newCAs(t))
	f.serve(validCard(f))
	first := f.card(&v1alpha1.IdentityBinding{Strict: true})
	f.run(first)
	if v, _ := f.label(f.name); v != "true" {
		t.Fatal("setup: not labelled")
	}
	second := &v1alpha1.AgentCard{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "zz-second-card"},
		Spec:       first.Spec,
	}
	f.create(second)
	_, got := f.run(second)
	wantCondition(t, got, v1alpha1.ConditionSynced, metav1.ConditionFalse, v1alpha1.ReasonDuplicateTarget)
	if c := condition(got, v1alpha1.ConditionSynced); !strings.Contains(c.Message, first.Name) {
		t.Errorf("Synced message %q does not name the card that owns the workload", c.Message)
	}
	if f.server.Fetches() != 1 {
		t.Errorf("the duplicate fetched the card (%d fetches)", f.server.Fetches())
	}

	// Deleting the duplicate leaves the owner's label.
	if err := f.c.Delete(f.ctx, got); err != nil {
		t.Fatal(err)
	}
	if _, err := f.reconciler().Reconcile(f.ctx, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(second)}); err != nil {
		t.Fatal(err)
	}
	if v, ok := f.label(f.name); !ok || v != "true" {
		t.Error("deleting the duplicate card removed the owner's label")
	}
	_, owner := f.run(first)
	wantCondition(t, owner, v1alpha1.ConditionVerified, metav1.ConditionTrue, v1alpha1.ReasonSignatureVerified)
}

func TestAWorkloadThatIsNoLongerAnAgentLosesTheLabel(t *testing.T) {
	f := newFixture(t, newFakeClient(t), newCAs(t))
	f.serve(validCard(f))
	card := f.card(nil)
	f.run(card)
	f.patchDeploymentLabels(map[string]*string{v1alpha1.LabelAgentType: nil})
	_, got := f.run(card)
	wantCondition(t, got, v1alpha1.ConditionSynced, metav1.ConditionFalse, v1alpha1.ReasonNotAgentWorkload)
	if _, ok := f.label(f.name); ok {
		t.Error("a workload that is no longer an agent kept the verified label")
	}
}

func TestSPIFFEMTLSFetchRequiresTheServerToBeTheCardsSigner(t *testing.T) {
	cas := newCAs(t)
	tests := []struct {
		name       string
		serverSA   string // the service account of the SVID the server presents
		wantStatus metav1.ConditionStatus
		wantReason string
	}{
		{"a card served by its signer over mTLS is mTLSVerified", testSA, metav1.ConditionTrue, v1alpha1.ReasonMTLSVerified},
		{"a valid card served by another workload of the trust domain is not verified", "billing-sa", metav1.ConditionFalse, v1alpha1.ReasonNotVerified},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, newFakeClient(t), cas)
			f.opts.SVIDs = cas.Ours.SVID(t, "spiffe://"+testTD+"/ns/agentid-system/sa/agentid-operator")
			serverSVID := cas.Ours.SVID(t, f.id(testTD, tt.serverSA))
			srv := cardtest.NewMTLSServer(t, validCard(f), serverSVID, f.bundle.bundle)
			// The Service URL is http as in a cluster; the reconciler
			// switches it to https for mTLS.
			f.servers[f.name] = "http://" + strings.TrimPrefix(srv.URL, "https://")
			card := f.card(&v1alpha1.IdentityBinding{Strict: true})
			_, got := f.run(card)
			wantCondition(t, got, v1alpha1.ConditionVerified, tt.wantStatus, tt.wantReason)
			if got.Status.AttestedAgentSpiffeID != f.id(testTD, tt.serverSA) {
				t.Errorf("attestedAgentSpiffeId = %q, want the server's %q", got.Status.AttestedAgentSpiffeID, f.id(testTD, tt.serverSA))
			}
			_, labelled := f.label(f.name)
			if labelled != (tt.wantStatus == metav1.ConditionTrue) {
				t.Errorf("labelled = %v, want %v", labelled, tt.wantStatus == metav1.ConditionTrue)
			}
			if tt.wantStatus == metav1.ConditionFalse {
				if c := condition(got, v1alpha1.ConditionVerified); !strings.Contains(c.Message, "served by") {
					t.Errorf("Verified message %q does not say who served the card", c.Message)
				}
				if got.Status.Card != nil {
					t.Error("a card served by another workload was published")
				}
			}
		})
	}
}

func TestSPIFFEMTLSFetchRefusesAServerOutsideTheBundle(t *testing.T) {
	cas := newCAs(t)
	f := newFixture(t, newFakeClient(t), cas)
	f.opts.SVIDs = cas.Ours.SVID(t, "spiffe://"+testTD+"/ns/agentid-system/sa/agentid-operator")
	rogue := cardtest.NewCA(t, testTD) // same trust domain name, another CA
	srv := cardtest.NewMTLSServer(t, validCard(f), rogue.SVID(t, f.id(testTD, testSA)), f.bundle.bundle)
	f.servers[f.name] = srv.URL
	_, got := f.run(f.card(nil))
	wantCondition(t, got, v1alpha1.ConditionSynced, metav1.ConditionFalse, v1alpha1.ReasonFetchFailed)
	if f.server.Fetches() != 0 || srv.Fetches() != 0 {
		t.Error("the card was served to the operator over a connection to a server outside the bundle")
	}
}

func (f *fixture) resignTrigger() string {
	f.t.Helper()
	var d appsv1.Deployment
	if err := f.c.Get(f.ctx, types.NamespacedName{Namespace: f.ns, Name: f.name}, &d); err != nil {
		f.t.Fatal(err)
	}
	return d.Spec.Template.Annotations[AnnotationResignTrigger]
}

func TestProactiveResigning(t *testing.T) {
	cas := newCAs(t)
	t.Run("a workload whose SVID expires within the grace period is restarted once per grace period", func(t *testing.T) {
		f := newFixture(t, newFakeClient(t), cas)
		f.opts.ResignGracePeriod = 30 * time.Minute
		now := time.Now()
		svid := f.ca.Ours.SVID(t, f.id(testTD, testSA), cardtest.Validity(now.Add(-time.Minute), now.Add(10*time.Minute)))
		f.serve(cardtest.Sign(t, cardtest.Card(f.name), svid))
		card := f.card(nil)
		f.run(card)
		first := f.resignTrigger()
		if _, err := time.Parse(time.RFC3339, first); err != nil {
			t.Fatalf("resign-trigger = %q, want an RFC 3339 time", first)
		}
		if !f.recorder.has("ResignTriggered") {
			t.Errorf("no ResignTriggered event; events: %v", f.recorder.events)
		}
		f.opts.Now = func() time.Time { return now.Add(5 * time.Minute) }
		f.reconcile = nil
		f.run(card)
		if got := f.resignTrigger(); got != first {
			t.Errorf("restarted again within the grace period: %q -> %q", first, got)
		}
	})
	t.Run("a healthy SVID restarts nothing", func(t *testing.T) {
		f := newFixture(t, newFakeClient(t), cas)
		f.opts.ResignGracePeriod = 30 * time.Minute
		f.serve(validCard(f)) // an hour left
		f.run(f.card(nil))
		if got := f.resignTrigger(); got != "" {
			t.Errorf("resign-trigger = %q, want none", got)
		}
	})
	t.Run("a card whose signing CA left the bundle is re-signed; an unrelated bundle change restarts nothing", func(t *testing.T) {
		f := newFixture(t, newFakeClient(t), cas)
		f.opts.ResignGracePeriod = 30 * time.Minute
		f.serve(validCard(f))
		card := f.card(nil)
		f.run(card)

		// The bundle gains a second CA: nothing to re-sign.
		extra := cardtest.NewCA(t, testTD)
		both, err := x509bundle.Parse(cas.Ours.TrustDomain, append(cas.Ours.PEM(), extra.PEM()...))
		if err != nil {
			t.Fatal(err)
		}
		f.bundle.bundle = both
		_, got := f.run(card)
		wantCondition(t, got, v1alpha1.ConditionVerified, metav1.ConditionTrue, v1alpha1.ReasonSignatureVerified)
		if tr := f.resignTrigger(); tr != "" {
			t.Fatalf("an unrelated bundle change restarted the workload (%q)", tr)
		}

		// The signing CA is rotated out.
		only, err := x509bundle.Parse(cas.Ours.TrustDomain, extra.PEM())
		if err != nil {
			t.Fatal(err)
		}
		f.bundle.bundle = only
		_, got = f.run(card)
		wantCondition(t, got, v1alpha1.ConditionVerified, metav1.ConditionFalse, v1alpha1.ReasonSignatureInvalid)
		if tr := f.resignTrigger(); tr == "" {
			t.Error("the workload was not restarted after its signing CA left the bundle")
		}
	})
	t.Run("without a grace period nothing is restarted", func(t *testing.T) {
		f := newFixture(t, newFakeClient(t), cas)
		now := time.Now()
		svid := f.ca.Ours.SVID(t, f.id(testTD, testSA), cardtest.Validity(now.Add(-time.Minute), now.Add(10*time.Minute)))
		f.serve(cardtest.Sign(t, cardtest.Card(f.name), svid))
		f.run(f.card(nil))
		if got := f.resignTrigger(); got != "" {
			t.Errorf("resign-trigger = %q with no grace period", got)
		}
	})
}

// With --rossoctl-labels the rossoctl twin of the verified label comes and
// goes with Kagenti's, in the same patch; without it, it is never set.
func TestTheRossoctlLabelFollowsKagentisWhenAskedFor(t *testing.T) {
	labels := func(f *fixture) map[string]string {
		var d appsv1.Deployment
		if err := f.c.Get(f.ctx, types.NamespacedName{Namespace: f.ns, Name: f.name}, &d); err != nil {
			t.Fatal(err)
		}
		return d.Spec.Template.Labels
	}
	for _, rossoctl := range []bool{false, true} {
		f := newFixture(t, newFakeClient(t), newCAs(t))
		f.opts.RossoctlLabel = rossoctl
		f.serve(validCard(f))
		card := f.card(&v1alpha1.IdentityBinding{Strict: true})
		_, got := f.run(card)
		wantCondition(t, got, v1alpha1.ConditionVerified, metav1.ConditionTrue, v1alpha1.ReasonSignatureVerified)
		l := labels(f)
		if _, has := l[v1alpha1.LabelSignatureVerifiedRossoctl]; l[v1alpha1.LabelSignatureVerified] != "true" || has != rossoctl {
			t.Fatalf("rossoctl labels %v, verified: pod template labels %v", rossoctl, l)
		}
		f.serve(tamper(t, validCard(f)))
		f.run(card)
		l = labels(f)
		if _, has := l[v1alpha1.LabelSignatureVerified]; has {
			t.Fatalf("rossoctl labels %v, tampered: Kagenti's label kept: %v", rossoctl, l)
		}
		if _, has := l[v1alpha1.LabelSignatureVerifiedRossoctl]; has {
			t.Fatalf("rossoctl labels %v, tampered: the rossoctl label kept: %v", rossoctl, l)
		}
	}
}

// TestAServiceWakesTheCardsThatFoundNone: the cards a new Service wakes are
// those whose last look found no Service, as recorded before the look (not
// read back from their cached status, which can lag behind the Service's
// event), and no longer once they found one or are gone.
func TestAServiceWakesTheCardsThatFoundNone(t *testing.T) {
	f := newFixture(t, newFakeClient(t), newCAs(t))
	f.serve(validCard(f))
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: f.name}}
	if err := f.c.Get(f.ctx, client.ObjectKeyFromObject(svc), svc); err != nil {
		t.Fatal(err)
	}
	if err := f.c.Delete(f.ctx, svc.DeepCopy()); err != nil {
		t.Fatal(err)
	}
	card := f.card(nil)
	r := f.reconciler()
	wakes := func(ns string) []reconcile.Request {
		return r.cardsWaitingForService(f.ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "any"}})
	}
	if got := wakes(f.ns); len(got) != 0 {
		t.Fatalf("before any reconcile a Service wakes %v, want none", got)
	}
	_, got := f.run(card)
	wantCondition(t, got, v1alpha1.ConditionSynced, metav1.ConditionFalse, v1alpha1.ReasonServiceNotFound)
	want := reconcile.Request{NamespacedName: client.ObjectKeyFromObject(card)}
	if got := wakes(f.ns); len(got) != 1 || got[0] != want {
		t.Fatalf("a Service in the card's namespace wakes %v, want %v", got, want)
	}
	if got := wakes("elsewhere"); len(got) != 0 {
		t.Fatalf("a Service in another namespace wakes %v, want none", got)
	}
	svc.ResourceVersion = ""
	f.create(svc)
	_, got = f.run(card)
	wantCondition(t, got, v1alpha1.ConditionVerified, metav1.ConditionTrue, v1alpha1.ReasonSignatureVerified)
	if got := wakes(f.ns); len(got) != 0 {
		t.Fatalf("after the card found its Service a Service wakes %v, want none", got)
	}

	// Gone while waiting: forgotten at its last reconcile.
	if err := f.c.Delete(f.ctx, svc.DeepCopy()); err != nil {
		t.Fatal(err)
	}
	f.run(card)
	if len(wakes(f.ns)) != 1 {
		t.Fatal("the card waits for a Service again")
	}
	if err := f.c.Delete(f.ctx, got.DeepCopy()); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the finalizer goes, then the card
		if _, err := r.Reconcile(f.ctx, want); err != nil {
			t.Fatal(err)
		}
	}
	if got := wakes(f.ns); len(got) != 0 {
		t.Fatalf("a deleted card is still woken: %v", got)
	}
}
