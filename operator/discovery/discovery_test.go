package discovery

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/agentid/agentid/api/v1alpha1"
)

func newScheme(t testing.TB) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return s
}

// eventLog is an events.EventRecorder that keeps "<reason>: <note>" lines.
type eventLog struct {
	mu     sync.Mutex
	events []string
}

func (l *eventLog) Eventf(_, _ runtime.Object, _, reason, _, note string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, reason+": "+fmt.Sprintf(note, args...))
}

var _ events.EventRecorder = (*eventLog)(nil)

const ns = "agents"

// agentLabels are the labels of an agent workload that discovery serves.
func agentLabels() map[string]string {
	return map[string]string{v1alpha1.LabelAgentType: v1alpha1.AgentTypeAgent, v1alpha1.LabelProtocolPrefix + "a2a": ""}
}

func deployment(name string, labels map[string]string) *appsv1.Deployment {
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{
		Namespace: ns, Name: name, Labels: labels, UID: types.UID("uid-" + name),
	}}
}

func statefulSet(name string, labels map[string]string) *appsv1.StatefulSet {
	return &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{
		Namespace: ns, Name: name, Labels: labels, UID: types.UID("uid-sts-" + name),
	}}
}

// manualCard is a card someone wrote for a workload.
func manualCard(name, kind, workload string) *v1alpha1.AgentCard {
	return &v1alpha1.AgentCard{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1alpha1.AgentCardSpec{TargetRef: v1alpha1.TargetRef{APIVersion: "apps/v1", Kind: kind, Name: workload}},
	}
}

type fixture struct {
	t      *testing.T
	c      client.Client
	rs     map[string]*Reconciler // by kind
	events *eventLog
}

func newFixture(t *testing.T, opts Options, objs ...client.Object) *fixture {
	t.Helper()
	c := fake.NewClientBuilder().WithScheme(newScheme(t)).WithObjects(objs...).Build()
	log := &eventLog{}
	rs, err := New(c, log, opts)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, c: c, rs: map[string]*Reconciler{}, events: log}
	for _, r := range rs {
		f.rs[r.kind.name] = r
	}
	return f
}

func (f *fixture) reconcile(kind, name string) {
	f.t.Helper()
	if _, err := f.rs[kind].Reconcile(f.t.Context(), reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}}); err != nil {
		f.t.Fatalf("Reconcile %s %s: %v", kind, name, err)
	}
}

func (f *fixture) cards() map[string]*v1alpha1.AgentCard {
	f.t.Helper()
	var list v1alpha1.AgentCardList
	if err := f.c.List(f.t.Context(), &list, client.InNamespace(ns)); err != nil {
		f.t.Fatal(err)
	}
	out := map[string]*v1alpha1.AgentCard{}
	for i := range list.Items {
		out[list.Items[i].Name] = &list.Items[i]
	}
	return out
}

func TestAnAgentWorkloadGetsItsCard(t *testing.T) {
	tests := []struct {
		name     string
		workload client.Object
		kind     string
		opts     Options
		wantCard string
		wantBind bool
	}{
		{"a Deployment gets <name>-deployment-card", deployment("weather", agentLabels()), "Deployment", Options{}, "weather-deployment-card", false},
		{"a StatefulSet gets <name>-statefulset-card", statefulSet("weather", agentLabels()), "StatefulSet", Options{}, "weather-statefulset-card", false},
		{"with a trust domain the card asks for identity binding", deployment("weather", agentLabels()), "Deployment", Options{BindIdentity: true}, "weather-deployment-card", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.opts, tt.workload)
			f.reconcile(tt.kind, tt.workload.GetName())
			cards := f.cards()
			card := cards[tt.wantCard]
			if len(cards) != 1 || card == nil {
				t.Fatalf("cards %v, want only %s", keys(cards), tt.wantCard)
			}
			if want := (v1alpha1.TargetRef{APIVersion: "apps/v1", Kind: tt.kind, Name: "weather"}); card.Spec.TargetRef != want {
				t.Errorf("targetRef %+v, want %+v", card.Spec.TargetRef, want)
			}
			owner := metav1.GetControllerOf(card)
			if owner == nil || owner.UID != tt.workload.GetUID() || owner.Kind != tt.kind || owner.Name != "weather" {
				t.Errorf("controller %+v, want the %s", owner, tt.kind)
			}
			if owner != nil && owner.BlockOwnerDeletion != nil {
				t.Error("blockOwnerDeletion is set: it needs update on the workload's finalizers")
			}
			if card.Labels["app.kubernetes.io/managed-by"] != ManagedBy || card.Labels["app.kubernetes.io/name"] != "weather" {
				t.Errorf("labels %v", card.Labels)
			}
			if got := card.Spec.IdentityBinding != nil; got != tt.wantBind {
				t.Errorf("identityBinding %+v, want present: %v", card.Spec.IdentityBinding, tt.wantBind)
			} else if got && (*card.Spec.IdentityBinding != v1alpha1.IdentityBinding{}) {
				t.Errorf("identityBinding %+v, want {} (the operator's trust domain, the workload's service account)", card.Spec.IdentityBinding)
			}
			if len(f.events.events) != 1 || !strings.HasPrefix(f.events.events[0], "AgentCardCreated:") {
				t.Errorf("events %v, want one AgentCardCreated", f.events.events)
			}

			// Reconciling again changes nothing.
			f.reconcile(tt.kind, tt.workload.GetName())
			if n := len(f.cards()); n != 1 {
				t.Errorf("%d cards after a second reconcile", n)
			}
		})
	}
}

func TestWhichWorkloadsGetNoCard(t *testing.T) {
	optOut := agentLabels()
	optOut[v1alpha1.LabelDiscovery] = v1alpha1.DiscoveryDisabled
	tests := []struct {
		name   string
		labels map[string]string
		want   bool
	}{
		{"an agent with a protocol label gets one", agentLabels(), true},
		{"an agent with the deprecated kagenti.io/protocol label gets one", map[string]string{v1alpha1.LabelAgentType: "agent", v1alpha1.LabelProtocolDeprecated: "a2a"}, true},
		{"an agent with the deprecated kagenti.io/agent-protocol label gets one", map[string]string{v1alpha1.LabelAgentType: "agent", v1alpha1.LabelAgentProtocolDeprecated: "a2a"}, true},
		{"an agent without a protocol label gets none (as Kagenti)", map[string]string{v1alpha1.LabelAgentType: "agent"}, false},
		{"an empty deprecated protocol label is no protocol", map[string]string{v1alpha1.LabelAgentType: "agent", v1alpha1.LabelProtocolDeprecated: ""}, false},
		{"a workload of another type gets none", map[string]string{v1alpha1.LabelAgentType: "tool", v1alpha1.LabelProtocolPrefix + "a2a": ""}, false},
		{"an unlabelled workload gets none", nil, false},
		{"an agent that opted out gets none", optOut, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Options{}, deployment("weather", tt.labels))
			f.reconcile("Deployment", "weather")
			if got := len(f.cards()) == 1; got != tt.want {
				t.Errorf("got a card: %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAWorkloadWithACardGetsNoSecond(t *testing.T) {
	tests := []struct {
		name string
		card *v1alpha1.AgentCard
		want []string // the cards after reconciling
	}{
		{"a card someone wrote", manualCard("mine", "Deployment", "weather"), []string{"mine"}},
		{"a card of another version of apps", func() *v1alpha1.AgentCard {
			c := manualCard("mine", "Deployment", "weather")
			c.Spec.TargetRef.APIVersion = "apps/v1beta2"
			return c
		}(), []string{"mine"}},
		{"a card of a StatefulSet of the same name does not count", manualCard("sts", "StatefulSet", "weather"), []string{"sts", "weather-deployment-card"}},
		{"a card of another Deployment does not count", manualCard("other", "Deployment", "news"), []string{"other", "weather-deployment-card"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Options{}, deployment("weather", agentLabels()), tt.card)
			f.reconcile("Deployment", "weather")
			if got := keys(f.cards()); strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("cards %v, want %v", got, tt.want)
			}
		})
	}
}

// TestADiscoveredCardGivesWayToOneSomeoneWrote: the card a person writes
// for a workload that already has a discovered card replaces it, so that
// their card, not discovery's, owns the workload.
func TestADiscoveredCardGivesWayToOneSomeoneWrote(t *testing.T) {
	f := newFixture(t, Options{}, deployment("weather", agentLabels()))
	f.reconcile("Deployment", "weather")
	if err := f.c.Create(t.Context(), manualCard("mine", "Deployment", "weather")); err != nil {
		t.Fatal(err)
	}
	f.reconcile("Deployment", "weather")
	if got := keys(f.cards()); len(got) != 1 || got[0] != "mine" {
		t.Errorf("cards %v, want only the one someone wrote", got)
	}
	if last := f.events.events[len(f.events.events)-1]; !strings.HasPrefix(last, "AgentCardDeleted:") || !strings.Contains(last, "mine") {
		t.Errorf("last event %q, want the deletion naming the card that replaced it", last)
	}
}

func TestOptingOutDeletesTheDiscoveredCardOnly(t *testing.T) {
	d := deployment("weather", agentLabels())
	// A card that carries discovery's label but that discovery did not
	// create (no owner reference to the workload) is someone's: kept.
	lookalike := manualCard("lookalike", "Deployment", "weather")
	lookalike.Labels = map[string]string{"app.kubernetes.io/managed-by": ManagedBy}
	f := newFixture(t, Options{}, d)
	f.reconcile("Deployment", "weather")
	if _, ok := f.cards()["weather-deployment-card"]; !ok {
		t.Fatal("setup: no discovered card")
	}
	d = &appsv1.Deployment{}
	if err := f.c.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: "weather"}, d); err != nil {
		t.Fatal(err)
	}
	d.Labels[v1alpha1.LabelDiscovery] = v1alpha1.DiscoveryDisabled
	if err := f.c.Update(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	f.reconcile("Deployment", "weather")
	if n := len(f.cards()); n != 0 {
		t.Errorf("%d cards after opting out, want none", n)
	}

	if err := f.c.Create(t.Context(), lookalike); err != nil {
		t.Fatal(err)
	}
	f.reconcile("Deployment", "weather")
	if _, ok := f.cards()["lookalike"]; !ok {
		t.Error("discovery deleted a card it did not create")
	}
}

func TestAWorkloadGoneOrGoingGetsNoCard(t *testing.T) {
	f := newFixture(t, Options{})
	f.reconcile("Deployment", "gone")
	d := deployment("going", agentLabels())
	d.Finalizers = []string{"example.org/hold"}
	now := metav1.Now()
	d.DeletionTimestamp = &now
	f = newFixture(t, Options{}, d)
	f.reconcile("Deployment", "going")
	if n := len(f.cards()); n != 0 {
		t.Errorf("%d cards for a workload being deleted", n)
	}
}

func TestCardName(t *testing.T) {
	long := strings.Repeat("a", 250)
	tests := []struct {
		workload, kind, want string
	}{
		{"weather", "Deployment", "weather-deployment-card"},
		{"weather", "StatefulSet", "weather-statefulset-card"},
	}
	for _, tt := range tests {
		if got := CardName(tt.workload, tt.kind); got != tt.want {
			t.Errorf("CardName(%q, %q) = %q, want %q", tt.workload, tt.kind, got, tt.want)
		}
	}
	a, b := CardName(long+"x", "Deployment"), CardName(long+"y", "Deployment")
	for _, n := range []string{a, b} {
		if errs := validation.IsDNS1123Subdomain(n); len(errs) > 0 {
			t.Errorf("CardName of a 251-character workload %q: %v", n, errs)
		}
		if !strings.HasSuffix(n, "-deployment-card") {
			t.Errorf("%q lost the kind suffix", n)
		}
	}
	if a == b {
		t.Error("two long workload names that differ at the end give one card name")
	}
}

func TestNewRefusesAnIncompleteSetup(t *testing.T) {
	c := fake.NewClientBuilder().WithScheme(newScheme(t)).Build()
	if _, err := New(nil, &eventLog{}, Options{}); err == nil {
		t.Error("no client accepted")
	}
	if _, err := New(c, nil, Options{}); err == nil {
		t.Error("no recorder accepted")
	}
}

func keys(m map[string]*v1alpha1.AgentCard) []string {
	return slices.Sorted(maps.Keys(m))
}
