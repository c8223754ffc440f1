package manager

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agentid/agentid/agentcard"
	"github.com/agentid/agentid/api/v1alpha1"
	"github.com/agentid/agentid/operator/internal/cardtest"
	"github.com/agentid/agentid/operator/netpolicy"
)

// TestScaleCardsReachVerified creates N agents (Deployment, Service, signed
// card, AgentCard; N = $AGENTID_SCALE_CARDS, default 500) on envtest, then
// starts the operator (--max-concurrent-reconciles = $AGENTID_SCALE_WORKERS,
// default 4) and times until every card is Synced and Verified — and, with
// AGENTID_SCALE_NETWORK_POLICIES=1 (--enforce-network-policies), has its
// permissive NetworkPolicy. It logs the time, the cards per second, the
// test process's heap and the operator's API requests per card by verb and
// resource (watches and the discovery of the API excluded).
func TestScaleCardsReachVerified(t *testing.T) {
	n := 500
	if v := os.Getenv("AGENTID_SCALE_CARDS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			t.Fatalf("AGENTID_SCALE_CARDS=%q", v)
		}
	}
	if raceEnabled && os.Getenv("AGENTID_SCALE_CARDS") == "" {
		n = 100 // the race detector slows the crypto tenfold
	}
	workers := 4
	if v := os.Getenv("AGENTID_SCALE_WORKERS"); v != "" {
		var err error
		if workers, err = strconv.Atoi(v); err != nil || workers < 1 {
			t.Fatalf("AGENTID_SCALE_WORKERS=%q", v)
		}
	}
	ca := cardtest.NewCA(t, "example.org")
	w := newWorld(t, ca.SPIFFEBundle(t))
	ctx := t.Context()

	// One server plays every agent: /<namespace>/<name>/.well-known/...
	cards := map[string][]byte{}
	const namespaces = 10
	for i := range n {
		ns, name := fmt.Sprintf("scale-%d", i%namespaces), fmt.Sprintf("agent-%d", i)
		svid := ca.SVID(t, "spiffe://example.org/ns/"+ns+"/sa/"+name+"-sa")
		cards["/"+ns+"/"+name+agentcard.WellKnownPath] = cardtest.Sign(t, cardtest.Card(name), svid)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		card, ok := cards[r.URL.Path]
		if !ok {
			http.NotFound(rw, r)
			return
		}
		rw.Write(card)
	}))
	t.Cleanup(srv.Close)

	began := time.Now()
	for i := range namespaces {
		w.create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("scale-%d", i)}})
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 8)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := createAgent(t, w.c, fmt.Sprintf("scale-%d", i%namespaces), fmt.Sprintf("agent-%d", i)); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("created %d agents (Deployment, Service, AgentCard) in %v", n, time.Since(began).Round(time.Millisecond))

	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	began = time.Now()
	var policies *netpolicy.Config
	if os.Getenv("AGENTID_SCALE_NETWORK_POLICIES") == "1" {
		policies = netpolConfig()
	}
	reconcilesBefore := reconciles(t)
	requests := &requestCounter{}
	operator := rest.CopyConfig(w.cfg)
	operator.Wrap(requests.wrap)
	mgr, err := New(ctx, operator, Config{
		NetworkPolicies:  policies,
		RequireSignature: true,
		TrustDomain:      spiffeid.RequireTrustDomainFromString("example.org"),
		Bundle:           types.NamespacedName{Namespace: bundleNS, Name: "spire-bundle"},
		MetricsAddr:      "0",
		ProbeAddr:        "0",
		ServiceURL: func(s *corev1.Service, _ corev1.ServicePort) string {
			return srv.URL + "/" + s.Namespace + "/" + s.Name + agentcard.WellKnownPath
		},
		Logger:                  slog.New(slog.NewTextHandler(io.Discard, nil)),
		Registerer:              prometheus.NewRegistry(),
		MaxConcurrentReconciles: workers,
		testing:                 true,
	})
	if err != nil {
		t.Fatal(err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		if err := <-stopped; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
	watcher, err := client.NewWithWatch(w.cfg, client.Options{Scheme: w.c.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	wait, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := waitForAll(wait, watcher, n, func(c *v1alpha1.AgentCard) bool {
		return meta.IsStatusConditionTrue(c.Status.Conditions, v1alpha1.ConditionSynced) && meta.IsStatusConditionTrue(c.Status.Conditions, v1alpha1.ConditionVerified) &&
			(policies == nil || meta.IsStatusConditionTrue(c.Status.Conditions, v1alpha1.ConditionNetworkPolicyApplied))
	}); err != nil {
		t.Fatal(err)
	}
	took := time.Since(began)
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	what := "Synced and Verified"
	if policies != nil {
		what += " with their NetworkPolicies"
	}
	t.Logf("%d cards %s %v after the operator started (%d workers): %.0f cards/s; test process heap in use %d MiB (was %d MiB before the operator)",
		n, what, took.Round(time.Millisecond), workers, float64(n)/took.Seconds(), after.HeapInuse>>20, before.HeapInuse>>20)
	done := reconciles(t) - reconcilesBefore
	t.Logf("%.0f reconciles of AgentCards until then (%.2f per card, %.0f/s)", done, done/float64(n), done/took.Seconds())
	t.Logf("operator API requests until then: %s", requests.perCard(n))
}

// reconciles is controller-runtime's count of AgentCard reconciles in this
// process, whatever their result.
func reconciles(t *testing.T) float64 {
	t.Helper()
	families, err := crmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != "controller_runtime_reconcile_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "controller" && l.GetValue() == "agentcard" {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}

// waitForAll waits until n AgentCards are done. It watches rather than
// polls: listing 500 cards ten times a second costs the API server, on a
// shared 2-core machine, a good part of what the operator is measured on.
func waitForAll(ctx context.Context, c client.WithWatch, n int, done func(*v1alpha1.AgentCard) bool) error {
	pending := map[types.NamespacedName]string{} // not done: its conditions
	seen := 0
	for {
		var list v1alpha1.AgentCardList
		if err := c.List(ctx, &list); err != nil {
			return fmt.Errorf("%d of %d cards done; e.g. %s: %w", seen-len(pending), n, sample(pending), err)
		}
		clear(pending)
		seen = len(list.Items)
		for i := range list.Items {
			card := &list.Items[i]
			if !done(card) {
				pending[client.ObjectKeyFromObject(card)] = fmt.Sprintf("%+v", card.Status.Conditions)
			}
		}
		if seen == n && len(pending) == 0 {
			return nil
		}
		events, err := c.Watch(ctx, &v1alpha1.AgentCardList{}, &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.ResourceVersion}})
		if err != nil {
			return fmt.Errorf("%d of %d cards done; e.g. %s: %w", seen-len(pending), n, sample(pending), err)
		}
		for ev := range events.ResultChan() {
			card, ok := ev.Object.(*v1alpha1.AgentCard)
			if !ok {
				break // an error event: list again
			}
			key := client.ObjectKeyFromObject(card)
			if ev.Type == watch.Deleted || done(card) {
				delete(pending, key)
			} else {
				pending[key] = fmt.Sprintf("%+v", card.Status.Conditions)
			}
			if len(pending) == 0 {
				events.Stop()
				return nil
			}
		}
		events.Stop()
		if ctx.Err() != nil {
			return fmt.Errorf("%d of %d cards done; e.g. %s: %w", seen-len(pending), n, sample(pending), ctx.Err())
		}
	}
}

func sample(pending map[types.NamespacedName]string) string {
	for k, v := range pending {
		return k.String() + ": " + v
	}
	return "none"
}

// requestCounter counts the requests of a rest.Config's transport by verb
// and resource, and times them, so that the scale test reports what each
// card costs the API server and how long the operator waits for it.
type requestCounter struct {
	mu    sync.Mutex
	count map[string]int
	took  map[string]time.Duration
}

func (c *requestCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(r *http.Request) (*http.Response, error) {
		key, ok := requestKey(r)
		if !ok {
			return rt.RoundTrip(r)
		}
		began := time.Now()
		resp, err := rt.RoundTrip(r)
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.count == nil {
			c.count, c.took = map[string]int{}, map[string]time.Duration{}
		}
		c.count[key]++
		c.took[key] += time.Since(began)
		return resp, err
	})
}

// perCard formats the counts divided by n, most frequent first, with the
// mean time of each.
func (c *requestCounter) perCard(n int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := slices.Collect(maps.Keys(c.count))
	sort.Slice(keys, func(i, j int) bool {
		if c.count[keys[i]] != c.count[keys[j]] {
			return c.count[keys[i]] > c.count[keys[j]]
		}
		return keys[i] < keys[j]
	})
	total := 0
	var b strings.Builder
	for _, k := range keys {
		total += c.count[k]
		fmt.Fprintf(&b, "; %s %d (%.2f/card, mean %v)", k, c.count[k], float64(c.count[k])/float64(n), (c.took[k] / time.Duration(c.count[k])).Round(100*time.Microsecond))
	}
	return fmt.Sprintf("%d (%.2f/card)%s", total, float64(total)/float64(n), b.String())
}

// requestKey is "<verb> <resource>[/<subresource>]" of an API request;
// false for watches and for the discovery of the API.
func requestKey(r *http.Request) (string, bool) {
	if r.URL.Query().Get("watch") == "true" {
		return "", false
	}
	// /api/v1/namespaces/ns/pods/name/status or
	// /apis/group/version/namespaces/ns/resource/name/subresource.
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case len(parts) > 2 && parts[0] == "api":
		parts = parts[2:]
	case len(parts) > 3 && parts[0] == "apis":
		parts = parts[3:]
	default:
		return "", false
	}
	if len(parts) > 1 && parts[0] == "namespaces" {
		parts = parts[2:]
	}
	if len(parts) == 0 {
		return "", false
	}
	resource := parts[0]
	if len(parts) > 2 {
		resource += "/" + parts[2]
	}
	verb := strings.ToLower(r.Method)
	if verb == "get" && len(parts) == 1 {
		verb = "list"
	}
	return verb + " " + resource, true
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func createAgent(t *testing.T, c client.Client, ns, name string) error {
	ctx := t.Context()
	one := int32(1)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{
			v1alpha1.LabelAgentType: v1alpha1.AgentTypeAgent, v1alpha1.LabelProtocolPrefix + "a2a": "",
		}},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec:       corev1.PodSpec{ServiceAccountName: name + "-sa", Containers: []corev1.Container{{Name: "a", Image: "x"}}},
			},
		},
	}
	if err := c.Create(ctx, d); err != nil {
		return err
	}
	d.Status = appsv1.DeploymentStatus{Replicas: 1, Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "Test"}}}
	if err := c.Status().Update(ctx, d); err != nil {
		return err
	}
	if err := c.Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		// Headless: envtest's service IP range holds 254 addresses.
		Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Selector: map[string]string{"app": name}, Ports: []corev1.ServicePort{{Port: 8000}}},
	}); err != nil {
		return err
	}
	return c.Create(ctx, &v1alpha1.AgentCard{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-card"},
		Spec: v1alpha1.AgentCardSpec{
			TargetRef:       v1alpha1.TargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
			IdentityBinding: &v1alpha1.IdentityBinding{Strict: true},
		},
	})
}
