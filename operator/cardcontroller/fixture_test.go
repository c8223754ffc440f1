package cardcontroller

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"

	"github.com/agentid/agentid/api/v1alpha1"
	"github.com/agentid/agentid/operator/internal/cardtest"
	"github.com/agentid/agentid/operator/netpolicy"
)

const (
	testTD = "example.org"
	testSA = "weather-sa"
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

// newFakeClient is the controller-runtime fake client with the status
// subresources the controller uses.
func newFakeClient(t testing.TB) client.Client {
	return newFakeClientWith(newScheme(t))
}

func newFakeClientWith(s *runtime.Scheme) client.Client {
	return fake.NewClientBuilder().
		WithScheme(s).
		WithStatusSubresource(&v1alpha1.AgentCard{}, &appsv1.Deployment{}, &appsv1.StatefulSet{}).
		Build()
}

// eventLog is an events.EventRecorder that keeps "<type> <reason>: <note>"
// lines.
type eventLog struct {
	mu     gosync.Mutex
	events []string
}

func (l *eventLog) Eventf(_, _ runtime.Object, eventtype, reason, _, note string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, eventtype+" "+reason+": "+fmt.Sprintf(note, args...))
}

// has reports whether an event of that reason was recorded.
func (l *eventLog) has(reason string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.events {
		if _, r, _ := strings.Cut(e, " "); strings.HasPrefix(r, reason+":") {
			return true
		}
	}
	return false
}

var _ events.EventRecorder = (*eventLog)(nil)

// staticBundle is a BundleSource with a fixed answer: the bundle of our
// trust domain and those of federated ones.
type staticBundle struct {
	bundle    *x509bundle.Bundle
	federated []*x509bundle.Bundle
	err       error
}

func (s *staticBundle) Bundles(context.Context) (*x509bundle.Set, error) {
	if s.err != nil {
		return nil, s.err
	}
	return x509bundle.NewSet(append([]*x509bundle.Bundle{s.bundle}, s.federated...)...), nil
}

// federate gives the operator the foreign CA's bundle, as the bundle of
// its own (federated) trust domain.
func (f *fixture) federate() {
	f.t.Helper()
	b, err := x509bundle.Parse(f.ca.Foreign.TrustDomain, f.ca.Foreign.PEM())
	if err != nil {
		f.t.Fatal(err)
	}
	f.bundle.federated = append(f.bundle.federated, b)
}

// fixture is one agent in its own namespace: a ready Deployment labelled as
// an a2a agent, a Service selecting its pods, and an HTTP server serving
// its card, which the reconciler reaches through Options.ServiceURL.
type fixture struct {
	t         *testing.T
	ctx       context.Context
	c         client.Client
	ns        string
	name      string
	ca        *CAs
	server    *cardtest.Server
	bundle    *staticBundle
	recorder  *eventLog
	opts      Options
	servers   map[string]string // Service name -> base URL
	reconcile *Reconciler
	// netpol turns on --enforce-network-policies (enforceNetworkPolicies).
	netpol bool
}

// CAs are the test's trust domains: ours, and a foreign one whose bundle
// the operator does not hold.
type CAs struct {
	Ours    *cardtest.CA
	Foreign *cardtest.CA
}

var nsCounter atomic.Int64

// newFixture creates the agent's objects through c. The card is not served
// until the test calls serve.
func newFixture(t *testing.T, c client.Client, cas *CAs) *fixture {
	t.Helper()
	return newFixtureIn(t, c, cas, fmt.Sprintf("agents-%d-%d", time.Now().UnixNano()%100000, nsCounter.Add(1)))
}

// newFixtureIn is newFixture in namespace ns.
func newFixtureIn(t *testing.T, c client.Client, cas *CAs, ns string) *fixture {
	t.Helper()
	ctx := t.Context()
	f := &fixture{
		t: t, ctx: ctx, c: c,
		ns:       ns,
		name:     "weather",
		ca:       cas,
		recorder: &eventLog{},
		servers:  map[string]string{},
	}
	bundle, err := x509bundle.Parse(cas.Ours.TrustDomain, cas.Ours.PEM())
	if err != nil {
		t.Fatal(err)
	}
	f.bundle = &staticBundle{bundle: bundle}
	f.server = cardtest.NewServer(t, []byte(`{}`))
	f.servers[f.name] = f.server.URL
	f.opts = Options{
		RequireSignature: true,
		TrustDomain:      cas.Ours.TrustDomain,
		FetchTimeout:     5 * time.Second,
		ServiceURL: func(s *corev1.Service, p corev1.ServicePort) string {
			if u, ok := f.servers[s.Name]; ok {
				return u
			}
			return ClusterServiceURL(s, p)
		},
	}
	f.create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: f.ns}})
	f.createDeployment(f.name, true)
	f.create(&corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: f.name},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": f.name},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 8000}},
		},
	})
	return f
}

func (f *fixture) create(o client.Object) {
	f.t.Helper()
	if err := f.c.Create(f.ctx, o); err != nil {
		f.t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
	}
}

// agentMeta is the metadata of an A2A agent workload called name.
func (f *fixture) agentMeta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: f.ns, Name: name, Labels: map[string]string{
		v1alpha1.LabelAgentType:                             v1alpha1.AgentTypeAgent,
		v1alpha1.LabelProtocolPrefix + v1alpha1.ProtocolA2A: "",
	}}
}

// agentPods are the selector and pod template of workload name: pods
// labelled app=name, running as testSA.
func agentPods(name string) (*metav1.LabelSelector, corev1.PodTemplateSpec) {
	return &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}}, corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{
			ServiceAccountName: testSA,
			Containers:         []corev1.Container{{Name: "agent", Image: "example.invalid/agent:1"}},
		},
	}
}

// createDeployment creates an agent Deployment whose pods run as testSA,
// with its status Available when ready.
func (f *fixture) createDeployment(name string, ready bool) *appsv1.Deployment {
	f.t.Helper()
	one := int32(1)
	selector, template := agentPods(name)
	d := &appsv1.Deployment{
		ObjectMeta: f.agentMeta(name),
		Spec:       appsv1.DeploymentSpec{Replicas: &one, Selector: selector, Template: template},
	}
	f.create(d)
	f.setDeploymentReady(d, ready)
	return d
}

// setDeploymentReady writes the status a Deployment controller would.
func (f *fixture) setDeploymentReady(d *appsv1.Deployment, ready bool) {
	f.t.Helper()
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	d.Status = appsv1.DeploymentStatus{
		ObservedGeneration: d.Generation,
		Replicas:           1,
		ReadyReplicas:      map[bool]int32{true: 1}[ready],
		AvailableReplicas:  map[bool]int32{true: 1}[ready],
		Conditions: []appsv1.DeploymentCondition{{
			Type: appsv1.DeploymentAvailable, Status: status, Reason: "Test",
			LastUpdateTime: metav1.Now(), LastTransitionTime: metav1.Now(),
		}},
	}
	if err := f.c.Status().Update(f.ctx, d); err != nil {
		f.t.Fatalf("updating the Deployment status: %v", err)
	}
}

// patchDeploymentLabels sets (or, for nil, removes) labels of the
// fixture's Deployment object.
func (f *fixture) patchDeploymentLabels(set map[string]*string) {
	f.t.Helper()
	var d appsv1.Deployment
	if err := f.c.Get(f.ctx, types.NamespacedName{Namespace: f.ns, Name: f.name}, &d); err != nil {
		f.t.Fatal(err)
	}
	patch := client.MergeFrom(d.DeepCopy())
	for k, v := range set {
		if v == nil {
			delete(d.Labels, k)
		} else {
			d.Labels[k] = *v
		}
	}
	if err := f.c.Patch(f.ctx, &d, patch); err != nil {
		f.t.Fatal(err)
	}
}

// setDeploymentReadyByName reads Deployment name and sets its readiness.
func (f *fixture) setDeploymentReadyByName(name string, ready bool) {
	f.t.Helper()
	var d appsv1.Deployment
	if err := f.c.Get(f.ctx, types.NamespacedName{Namespace: f.ns, Name: name}, &d); err != nil {
		f.t.Fatal(err)
	}
	f.setDeploymentReady(&d, ready)
}

// id is the SPIFFE ID of the fixture's workload in trust domain td.
func (f *fixture) id(td, sa string) string {
	return "spiffe://" + td + "/ns/" + f.ns + "/sa/" + sa
}

// signedCard is the agent's card signed with an SVID of id by ca.
func (f *fixture) signedCard(ca *cardtest.CA, id string, opts ...cardtest.SVIDOption) []byte {
	f.t.Helper()
	return cardtest.Sign(f.t, cardtest.Card(f.name), ca.SVID(f.t, id, opts...))
}

// serve makes the agent serve card.
func (f *fixture) serve(card []byte) { f.server.SetCard(card) }

// card creates the AgentCard for the fixture's Deployment.
func (f *fixture) card(binding *v1alpha1.IdentityBinding) *v1alpha1.AgentCard {
	f.t.Helper()
	c := &v1alpha1.AgentCard{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: f.name + "-card"},
		Spec: v1alpha1.AgentCardSpec{
			TargetRef:       v1alpha1.TargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: f.name},
			IdentityBinding: binding,
		},
	}
	f.create(c)
	return c
}

// reconciler returns the fixture's reconciler, made on first use from
// f.opts.
func (f *fixture) reconciler() *Reconciler {
	f.t.Helper()
	if f.reconcile == nil {
		if f.netpol && f.opts.NetworkPolicies == nil {
			e, err := netpolicy.NewEnforcer(netpolicy.Options{Client: f.c, Recorder: f.recorder, Config: testNetpolConfig()})
			if err != nil {
				f.t.Fatal(err)
			}
			f.opts.NetworkPolicies = e
		}
		r, err := New(f.c, f.bundle, f.recorder, f.opts)
		if err != nil {
			f.t.Fatal(err)
		}
		f.reconcile = r
	}
	return f.reconcile
}

// run reconciles card once and returns the result and the card as stored.
func (f *fixture) run(card *v1alpha1.AgentCard) (reconcile.Result, *v1alpha1.AgentCard) {
	f.t.Helper()
	res, err := f.reconciler().Reconcile(f.ctx, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(card)})
	if err != nil {
		f.t.Fatalf("Reconcile: %v", err)
	}
	return res, f.get(card)
}

func (f *fixture) get(card *v1alpha1.AgentCard) *v1alpha1.AgentCard {
	f.t.Helper()
	var got v1alpha1.AgentCard
	if err := f.c.Get(f.ctx, client.ObjectKeyFromObject(card), &got); err != nil {
		f.t.Fatal(err)
	}
	return &got
}

// label returns the verified label of the Deployment's pod template.
func (f *fixture) label(name string) (string, bool) {
	f.t.Helper()
	var d appsv1.Deployment
	if err := f.c.Get(f.ctx, types.NamespacedName{Namespace: f.ns, Name: name}, &d); err != nil {
		f.t.Fatal(err)
	}
	v, ok := d.Spec.Template.Labels[v1alpha1.LabelSignatureVerified]
	return v, ok
}

// wantCondition checks one condition's status and reason.
func wantCondition(t *testing.T, card *v1alpha1.AgentCard, typ string, status metav1.ConditionStatus, reason string) {
	t.Helper()
	c := meta.FindStatusCondition(card.Status.Conditions, typ)
	if c == nil {
		t.Errorf("condition %s missing; conditions: %+v", typ, card.Status.Conditions)
		return
	}
	if c.Status != status || c.Reason != reason {
		t.Errorf("condition %s = %s/%s (%q), want %s/%s", typ, c.Status, c.Reason, c.Message, status, reason)
	}
}

func wantBool(t *testing.T, name string, got *bool, want bool) {
	t.Helper()
	if got == nil || *got != want {
		t.Errorf("%s = %v, want %v", name, fmtBool(got), want)
	}
}

func fmtBool(b *bool) string {
	if b == nil {
		return "nil"
	}
	return strconv.FormatBool(*b)
}

func newCAs(t testing.TB) *CAs {
	return &CAs{Ours: cardtest.NewCA(t, testTD), Foreign: cardtest.NewCA(t, "partner.example")}
}

// tamper changes the card's description after signing, keeping the
// signature.
func tamper(t testing.TB, signed []byte) []byte {
	t.Helper()
	out := bytes.Replace(signed, []byte(`"description": "test agent`), []byte(`"description": "evil agent`), 1)
	if bytes.Equal(out, signed) {
		t.Fatal("tamper: description not found")
	}
	return out
}

// testNetpolConfig admits the operator's pods in agentid-system.
func testNetpolConfig() netpolicy.Config {
	return netpolicy.Config{
		OperatorNamespace: "agentid-system",
		OperatorPods:      &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": "agentid-operator"}},
		DNSNamespace:      "kube-system",
		DNSPods:           &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "kube-dns"}},
	}
}

// enforceNetworkPolicies turns on --enforce-network-policies for the
// fixture's reconciler (made on first use), and makes sure the API server
// has an EndpointSlice: a real API server publishes its own, the fake
// client gets one.
func (f *fixture) enforceNetworkPolicies() {
	f.t.Helper()
	f.netpol = true
	if len(f.apiServerSlices()) > 0 {
		return
	}
	port, proto := int32(6443), corev1.ProtocolTCP
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: netpolicy.APIServerNamespace, Name: netpolicy.APIServerService,
			Labels: map[string]string{discoveryv1.LabelServiceName: netpolicy.APIServerService}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptrTo("https"), Port: &port, Protocol: &proto}},
	}
	if err := f.c.Create(f.ctx, s); err != nil && !apierrors.IsAlreadyExists(err) {
		f.t.Fatal(err)
	}
}

func ptrTo[T any](v T) *T { return &v }

// apiServerSlices lists the EndpointSlices of default/kubernetes.
func (f *fixture) apiServerSlices() []discoveryv1.EndpointSlice {
	f.t.Helper()
	var list discoveryv1.EndpointSliceList
	if err := f.c.List(f.ctx, &list, client.InNamespace(netpolicy.APIServerNamespace),
		client.MatchingLabels{discoveryv1.LabelServiceName: netpolicy.APIServerService}); err != nil {
		f.t.Fatal(err)
	}
	return list.Items
}

// policy returns the card's NetworkPolicy, or nil.
func (f *fixture) policy(card *v1alpha1.AgentCard) *networkingv1.NetworkPolicy {
	f.t.Helper()
	var np networkingv1.NetworkPolicy
	err := f.c.Get(f.ctx, types.NamespacedName{Namespace: card.Namespace, Name: netpolicy.Name(card.Name)}, &np)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		f.t.Fatal(err)
	}
	return &np
}

// wantPolicy checks that the card's policy is in mode, selects the pods
// by the Deployment's spec.selector and is controlled by the card.
func wantPolicy(t *testing.T, f *fixture, card *v1alpha1.AgentCard, mode netpolicy.Mode) *networkingv1.NetworkPolicy {
	t.Helper()
	np := f.policy(card)
	if np == nil {
		t.Fatalf("no NetworkPolicy %s", netpolicy.Name(card.Name))
	}
	if got := np.Labels[v1alpha1.LabelNetworkPolicyMode]; got != string(mode) {
		t.Errorf("policy mode %q, want %q (spec %+v)", got, mode, np.Spec)
	}
	var d appsv1.Deployment
	if err := f.c.Get(f.ctx, types.NamespacedName{Namespace: f.ns, Name: card.Spec.TargetRef.Name}, &d); err == nil {
		if !equality.Semantic.DeepEqual(np.Spec.PodSelector, *d.Spec.Selector) {
			t.Errorf("podSelector %+v, want the Deployment's spec.selector %+v", np.Spec.PodSelector, d.Spec.Selector)
		}
	}
	if ref := metav1.GetControllerOf(np); ref == nil || ref.Kind != "AgentCard" || ref.Name != card.Name || ref.UID != f.get(card).UID {
		t.Errorf("controller %+v, want the AgentCard %s", ref, card.Name)
	}
	return np
}
