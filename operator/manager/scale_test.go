package manager

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

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
// permissive NetworkPolicy. It logs the time, the cards per second and the
// test process's heap.
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
	w.start(t, Config{
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
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var list v1alpha1.AgentCardList
		if err := w.c.List(ctx, &list); err != nil {
			t.Fatal(err)
		}
		done := 0
		var sample string
		for _, c := range list.Items {
			if meta.IsStatusConditionTrue(c.Status.Conditions, v1alpha1.ConditionSynced) && meta.IsStatusConditionTrue(c.Status.Conditions, v1alpha1.ConditionVerified) &&
				(policies == nil || meta.IsStatusConditionTrue(c.Status.Conditions, v1alpha1.ConditionNetworkPolicyApplied)) {
				done++
			} else if sample == "" {
				sample = fmt.Sprintf("%s/%s: %+v", c.Namespace, c.Name, c.Status.Conditions)
			}
		}
		if done == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d cards verified after 5 minutes; e.g. %s", done, n, sample)
		}
		time.Sleep(100 * time.Millisecond)
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
}

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
