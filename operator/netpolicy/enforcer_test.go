package netpolicy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/agentid/agentid/api/v1alpha1"
)

type eventLog struct {
	mu     sync.Mutex
	events []string
}

func (l *eventLog) Eventf(_, _ runtime.Object, eventtype, reason, _, note string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, eventtype+" "+reason+": "+fmt.Sprintf(note, args...))
}

func (l *eventLog) count(reason string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.events {
		if _, r, _ := strings.Cut(e, " "); strings.HasPrefix(r, reason+":") {
			n++
		}
	}
	return n
}

type bench struct {
	t       *testing.T
	c       client.Client
	e       *Enforcer
	events  *eventLog
	reg     *prometheus.Registry
	card    *v1alpha1.AgentCard
	workSel *metav1.LabelSelector
}

func scheme(t *testing.T) *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return s
}

// newBench is an Enforcer on the fake client holding the API server's
// EndpointSlice; wrap, when set, intercepts the Enforcer's client (the
// objects stay reachable through b.c).
func newBench(t *testing.T, wrap *interceptor.Funcs) *bench {
	t.Helper()
	s := apiSlice("kubernetes", discoveryv1.AddressTypeIPv4, []int32{6443}, "172.18.0.2")
	base := fake.NewClientBuilder().WithScheme(scheme(t)).WithObjects(&s).Build()
	c := client.Client(base)
	if wrap != nil {
		c = interceptor.NewClient(base.(client.WithWatch), *wrap)
	}
	b := &bench{t: t, c: base, events: &eventLog{}, reg: prometheus.NewRegistry(), card: testCard("weather-card"),
		workSel: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "weather"}}}
	m, err := NewMetrics(b.reg)
	if err != nil {
		t.Fatal(err)
	}
	b.e, err = NewEnforcer(Options{Client: c, APIReader: base, Recorder: b.events, Config: testConfig(), Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (b *bench) apply(v Verdict, audit bool) Outcome {
	b.t.Helper()
	out, err := b.e.Apply(context.Background(), b.card, Decision{Verdict: v, Audit: audit, Why: "because", Selector: b.workSel})
	if err != nil {
		b.t.Fatalf("Apply: %v", err)
	}
	return out
}

func (b *bench) policy() *networkingv1.NetworkPolicy {
	b.t.Helper()
	var np networkingv1.NetworkPolicy
	if err := b.c.Get(context.Background(), types.NamespacedName{Namespace: b.card.Namespace, Name: Name(b.card.Name)}, &np); err != nil {
		b.t.Fatalf("reading the policy: %v", err)
	}
	return &np
}

func (b *bench) state(s string) float64 {
	return testutil.ToFloat64(b.e.o.Metrics.cards.WithLabelValues(s))
}

func mode(np *networkingv1.NetworkPolicy) string { return np.Labels[v1alpha1.LabelNetworkPolicyMode] }

func TestApplyFollowsTheVerdict(t *testing.T) {
	b := newBench(t, nil)
	out := b.apply(Verified, false)
	if out.Status != metav1.ConditionTrue || out.Reason != v1alpha1.ReasonPolicyPermissive {
		t.Errorf("outcome %+v, want True/PolicyPermissive", out)
	}
	np := b.policy()
	if mode(np) != "permissive" || !metav1.IsControlledBy(np, b.card) {
		t.Errorf("policy mode %q, controller %v; want permissive, controlled by the card", mode(np), metav1.GetControllerOf(np))
	}
	if ref := metav1.GetControllerOf(np); ref == nil || ref.Kind != "AgentCard" || ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
		t.Errorf("ownerReference %+v, want the AgentCard as controller blocking owner deletion", ref)
	}
	// Created permissive: no event (the card's own events say it).
	if b.events.count("NetworkPolicyPermissive") != 0 || b.state("permissive") != 1 {
		t.Errorf("events %v, permissive gauge %v", b.events.events, b.state("permissive"))
	}

	out = b.apply(Unverified, false)
	np = b.policy()
	if out.Reason != v1alpha1.ReasonPolicyRestrictive || mode(np) != "restrictive" {
		t.Errorf("after unverified: outcome %+v, mode %q; want restrictive", out, mode(np))
	}
	if got := np.Spec.Egress[len(np.Spec.Egress)-1].To[0].IPBlock; got == nil || got.CIDR != "172.18.0.2/32" {
		t.Errorf("API-server egress %+v, want the EndpointSlice's address", np.Spec.Egress)
	}
	if b.events.count("NetworkPolicyRestrictive") != 1 || b.state("restrictive") != 1 || b.state("permissive") != 0 {
		t.Errorf("events %v; gauges restrictive %v permissive %v", b.events.events, b.state("restrictive"), b.state("permissive"))
	}

	// Unchanged: no write, no event.
	rv := np.ResourceVersion
	b.apply(Unverified, false)
	if b.policy().ResourceVersion != rv || b.events.count("NetworkPolicyRestrictive") != 1 {
		t.Error("an unchanged verdict wrote the policy again or reported a flip")
	}

	// Back to verified: a flip, reported.
	b.apply(Verified, false)
	if mode(b.policy()) != "permissive" || b.events.count("NetworkPolicyPermissive") != 1 {
		t.Errorf("after verified again: mode %q, events %v", mode(b.policy()), b.events.events)
	}
}

func TestAPolicyCreatedRestrictiveIsAnEvent(t *testing.T) {
	b := newBench(t, nil)
	b.apply(Unverified, false)
	if b.events.count("NetworkPolicyRestrictive") != 1 {
		t.Errorf("events %v, want NetworkPolicyRestrictive", b.events.events)
	}
}

func TestApplyInAuditModeIsNeverRestrictive(t *testing.T) {
	b := newBench(t, nil)
	for _, v := range []Verdict{Unverified, Undecided, Verified, Unverified} {
		out := b.apply(v, true)
		if mode(b.policy()) != "permissive" {
			t.Fatalf("verdict %v in audit mode: policy %q", v, mode(b.policy()))
		}
		wantReason := v1alpha1.ReasonPolicyAudit
		if v == Verified {
			wantReason = v1alpha1.ReasonPolicyPermissive
		}
		if out.Reason != wantReason {
			t.Errorf("verdict %v: reason %s, want %s", v, out.Reason, wantReason)
		}
		if v != Verified && !strings.Contains(out.Message, "enforce mode would apply the restrictive policy: because") {
			t.Errorf("message %q does not record the would-be outcome", out.Message)
		}
	}
	if b.events.count("NetworkPolicyRestrictive") != 0 || b.state("audit") != 1 {
		t.Errorf("events %v, audit gauge %v", b.events.events, b.state("audit"))
	}
}

func TestApplyUndecidedKeepsThePolicyInPlace(t *testing.T) {
	b := newBench(t, nil)
	out := b.apply(Undecided, false)
	if mode(b.policy()) != "restrictive" || out.Reason != v1alpha1.ReasonPolicyRestrictive {
		t.Errorf("no policy yet: outcome %+v, mode %q; want restrictive (never permissive by failure)", out, mode(b.policy()))
	}
	b.apply(Verified, false)
	out = b.apply(Undecided, false)
	if mode(b.policy()) != "permissive" || out.Reason != v1alpha1.ReasonPolicyPermissive || !strings.Contains(out.Message, "kept") {
		t.Errorf("verified before: outcome %+v, mode %q; want the permissive policy kept", out, mode(b.policy()))
	}
}

func TestApplyRevertsDrift(t *testing.T) {
	b := newBench(t, nil)
	b.apply(Unverified, false)
	np := b.policy()
	np.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{}}
	np.Labels[v1alpha1.LabelNetworkPolicyMode] = "permissive"
	np.Labels["team"] = "weather"
	if err := b.c.Update(context.Background(), np); err != nil {
		t.Fatal(err)
	}
	b.apply(Unverified, false)
	got := b.policy()
	if len(got.Spec.Ingress) != 1 || len(got.Spec.Ingress[0].From) != 1 || mode(got) != "restrictive" {
		t.Errorf("drift not reverted: ingress %+v, mode %q", got.Spec.Ingress, mode(got))
	}
	if got.Labels["team"] != "weather" {
		t.Error("a label someone else added was removed")
	}
}

func TestApplyNeverOverwritesAPolicyItDoesNotControl(t *testing.T) {
	other := testCard("other-card")
	tests := []struct {
		name  string
		owner func(np *networkingv1.NetworkPolicy)
		want  string
	}{
		{"a policy without owner", func(*networkingv1.NetworkPolicy) {}, "no controller"},
		{"a policy controlled by another AgentCard", func(np *networkingv1.NetworkPolicy) {
			np.OwnerReferences = []metav1.OwnerReference{{APIVersion: "agent.kagenti.dev/v1alpha1", Kind: "AgentCard", Name: other.Name, UID: other.UID, Controller: ptr(true)}}
		}, "controller AgentCard other-card"},
		{"a policy of a card of the same name that was deleted and created again (another UID)", func(np *networkingv1.NetworkPolicy) {
			np.OwnerReferences = []metav1.OwnerReference{{APIVersion: "agent.kagenti.dev/v1alpha1", Kind: "AgentCard", Name: "weather-card", UID: "old-uid", Controller: ptr(true)}}
		}, "controller AgentCard weather-card"},
		{"a policy that only lists the card as a non-controlling owner", func(np *networkingv1.NetworkPolicy) {
			np.OwnerReferences = []metav1.OwnerReference{{APIVersion: "agent.kagenti.dev/v1alpha1", Kind: "AgentCard", Name: "weather-card", UID: "uid-weather-card"}}
		}, "no controller"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBench(t, nil)
			theirs := &networkingv1.NetworkPolicy{
				ObjectMeta: metav1.ObjectMeta{Namespace: "agents", Name: Name(b.card.Name), Labels: map[string]string{"team": "weather"}},
				Spec:       networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}},
			}
			tt.owner(theirs)
			if err := b.c.Create(context.Background(), theirs); err != nil {
				t.Fatal(err)
			}
			rv := b.policy().ResourceVersion
			for range 2 {
				out := b.apply(Unverified, false)
				if out.Status != metav1.ConditionFalse || out.Reason != v1alpha1.ReasonPolicyConflict || !strings.Contains(out.Message, tt.want) {
					t.Errorf("outcome %+v, want False/PolicyConflict naming %q", out, tt.want)
				}
			}
			if got := b.policy(); got.ResourceVersion != rv || got.Spec.PodSelector.MatchLabels["app"] != "db" {
				t.Error("the policy that is not the card's was changed")
			}
			if n := b.events.count("NetworkPolicyConflict"); n != 1 {
				t.Errorf("%d conflict events, want 1 (on the change of state only)", n)
			}
			if b.state("conflict") != 1 {
				t.Errorf("conflict gauge %v", b.state("conflict"))
			}
			if err := b.e.Release(context.Background(), b.card); err != nil {
				t.Fatal(err)
			}
			if b.policy().ResourceVersion != rv {
				t.Error("Release deleted or changed a policy that is not the card's")
			}
		})
	}
}

// TestApplyFindsPoliciesTheCacheDoesNotHold: the manager caches only
// policies labelled as the operator's. A policy of the card's name without
// that label is found by the API reader when creating fails, and judged by
// its controller: someone else's is a conflict; the card's own (its labels
// removed by hand) is repaired.
func TestApplyFindsPoliciesTheCacheDoesNotHold(t *testing.T) {
	hideUnlabelled := &interceptor.Funcs{Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
		if err := c.Get(ctx, key, obj, opts...); err != nil {
			return err
		}
		if np, ok := obj.(*networkingv1.NetworkPolicy); ok && np.Labels[LabelManagedBy] != ManagedBy {
			return apierrors.NewNotFound(schema.GroupResource{Group: "networking.k8s.io", Resource: "networkpolicies"}, key.Name)
		}
		return nil
	}}
	t.Run("someone else's is a conflict", func(t *testing.T) {
		b := newBench(t, hideUnlabelled)
		if err := b.c.Create(context.Background(), &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "agents", Name: Name(b.card.Name)}}); err != nil {
			t.Fatal(err)
		}
		if out := b.apply(Unverified, false); out.Reason != v1alpha1.ReasonPolicyConflict {
			t.Errorf("outcome %+v, want PolicyConflict", out)
		}
	})
	t.Run("the card's own is repaired", func(t *testing.T) {
		b := newBench(t, hideUnlabelled)
		b.apply(Unverified, false)
		np := b.policy()
		np.Labels = nil
		if err := b.c.Update(context.Background(), np); err != nil {
			t.Fatal(err)
		}
		if out := b.apply(Unverified, false); out.Reason != v1alpha1.ReasonPolicyRestrictive {
			t.Errorf("outcome %+v, want PolicyRestrictive", out)
		}
		if got := b.policy(); got.Labels[LabelManagedBy] != ManagedBy || mode(got) != "restrictive" {
			t.Errorf("labels %v, want the operator's restored", got.Labels)
		}
	})
}

func TestApplyWithoutTheAPIServerIsStillRestrictive(t *testing.T) {
	tests := []struct {
		name string
		wrap *interceptor.Funcs
		prep func(b *bench)
		want string
	}{
		{"the EndpointSlices cannot be listed", &interceptor.Funcs{List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			if _, ok := list.(*discoveryv1.EndpointSliceList); ok {
				return errors.New("forbidden")
			}
			return c.List(ctx, list, opts...)
		}}, nil, "listing its EndpointSlices failed: forbidden"},
		{"there is no EndpointSlice of default/kubernetes", nil, func(b *bench) {
			if err := b.c.Delete(context.Background(), &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "kubernetes"}}); err != nil {
				b.t.Fatal(err)
			}
		}, "no EndpointSlice of Service default/kubernetes found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBench(t, tt.wrap)
			if tt.prep != nil {
				tt.prep(b)
			}
			out := b.apply(Unverified, false)
			np := b.policy()
			if out.Reason != v1alpha1.ReasonPolicyRestrictive || mode(np) != "restrictive" || !strings.Contains(out.Message, tt.want) {
				t.Errorf("outcome %+v, mode %q; want restrictive saying %q", out, mode(np), tt.want)
			}
			for _, r := range np.Spec.Egress {
				for _, p := range r.To {
					if p.IPBlock != nil {
						t.Errorf("egress to %s without a known API server", p.IPBlock.CIDR)
					}
				}
			}
			if got := testutil.ToFloat64(b.e.o.Metrics.apiServer); tt.wrap == nil && got != 0 {
				t.Errorf("API-server endpoints gauge %v, want 0", got)
			}
		})
	}
}

func TestApplyReportsAPIFailures(t *testing.T) {
	b := newBench(t, &interceptor.Funcs{Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
		return errors.New("etcd is down")
	}})
	out, err := b.e.Apply(context.Background(), b.card, Decision{Verdict: Verified, Selector: b.workSel})
	if err == nil || out.Status != metav1.ConditionFalse || out.Reason != v1alpha1.ReasonPolicyFailed || !strings.Contains(out.Message, "etcd is down") {
		t.Errorf("err %v, outcome %+v; want the error, and False/PolicyFailed saying it", err, out)
	}
	if b.state("failed") != 1 {
		t.Errorf("failed gauge %v", b.state("failed"))
	}
	out, err = b.e.Apply(context.Background(), b.card, Decision{Verdict: Verified, Selector: &metav1.LabelSelector{}})
	if err != nil || out.Reason != v1alpha1.ReasonPolicyFailed || !strings.Contains(out.Message, "every pod") {
		t.Errorf("empty selector: err %v, outcome %+v; want no retry and PolicyFailed", err, out)
	}
}

func TestReleaseDeletesTheCardsPolicyAndForgetsTheCard(t *testing.T) {
	b := newBench(t, nil)
	b.apply(Unverified, false)
	if err := b.e.Release(context.Background(), b.card); err != nil {
		t.Fatal(err)
	}
	var np networkingv1.NetworkPolicy
	err := b.c.Get(context.Background(), types.NamespacedName{Namespace: "agents", Name: Name(b.card.Name)}, &np)
	if !apierrors.IsNotFound(err) {
		t.Errorf("the policy is still there (%v)", err)
	}
	if b.state("restrictive") != 0 {
		t.Errorf("restrictive gauge %v after the card left", b.state("restrictive"))
	}
	if err := b.e.Release(context.Background(), b.card); err != nil {
		t.Errorf("releasing twice: %v", err)
	}
}

func TestNewEnforcerRefusesAnIncompleteConfig(t *testing.T) {
	c := fake.NewClientBuilder().WithScheme(scheme(t)).Build()
	bad := testConfig()
	bad.OperatorPods = nil
	if _, err := NewEnforcer(Options{Client: c, Recorder: &eventLog{}, Config: bad}); err == nil {
		t.Error("an Enforcer without the operator's pod selector was made")
	}
	if _, err := NewEnforcer(Options{Client: c, Config: testConfig()}); err == nil {
		t.Error("an Enforcer without an event recorder was made")
	}
}
