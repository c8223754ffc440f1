package trustbundle

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agentid/agentid/operator/internal/cardtest"
)

var (
	cmName = types.NamespacedName{Namespace: "spire-system", Name: "spire-bundle"}
	td     = spiffeid.RequireTrustDomainFromString("example.org")
)

func newClient(t *testing.T, objs ...client.Object) client.Client {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).Build()
}

func configMap(data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: cmName.Namespace, Name: cmName.Name}, Data: data}
}

func TestBundleFormatsAndErrors(t *testing.T) {
	ca := cardtest.NewCA(t, "example.org")
	tests := []struct {
		name    string
		objs    []client.Object
		key     string
		wantErr string
	}{
		{"a SPIFFE JSON bundle under the default key loads", []client.Object{configMap(map[string]string{DefaultKey: string(ca.SPIFFEBundle(t))})}, "", ""},
		{"a PEM bundle under a configured key loads", []client.Object{configMap(map[string]string{"bundle.crt": string(ca.PEM())})}, "bundle.crt", ""},
		{"a missing ConfigMap says which", nil, "", "ConfigMap not found: spire-system/spire-bundle"},
		{"a missing key says which", []client.Object{configMap(map[string]string{"other": "x"})}, "", `key "bundle.spiffe"`},
		{"a bundle that does not parse says so", []client.Object{configMap(map[string]string{DefaultKey: `{"keys": [}`})}, "", "failed to parse SPIFFE bundle JSON"},
		{"a bundle without authorities says so", []client.Object{configMap(map[string]string{DefaultKey: `{"keys": []}`})}, "", "no certificates"},
		{"a bundle set without trust domains says so", []client.Object{configMap(map[string]string{DefaultKey: `{}`})}, "", "names no trust domain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			m, err := NewMetrics(reg)
			if err != nil {
				t.Fatal(err)
			}
			cm, err := NewConfigMap(newClient(t, tt.objs...), cmName, tt.key, td, WithMetrics(m))
			if err != nil {
				t.Fatal(err)
			}
			set, err := cm.Bundles(t.Context())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Bundles = %v, %v; want an error containing %q", set, err, tt.wantErr)
				}
				if n := testutil.CollectAndCount(m.loadErrors); n != 1 || testutil.ToFloat64(m.authorities) != 0 {
					t.Errorf("load error series = %d, authorities = %v; want one error and 0", n, testutil.ToFloat64(m.authorities))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if testutil.ToFloat64(m.authorities) != 1 {
				t.Errorf("agentid_trust_bundle_authorities = %v, want 1", testutil.ToFloat64(m.authorities))
			}
			b, ok := set.Get(td)
			if set.Len() != 1 || !ok || len(b.X509Authorities()) != 1 || !b.X509Authorities()[0].Equal(ca.Cert) {
				t.Errorf("bundles = %v, want only the CA of %s", TrustDomains(set), td)
			}
		})
	}
}

// countingReader counts Gets and lets the test change the ConfigMap.
type countingReader struct {
	client.Client
	gets atomic.Int64
}

func (c *countingReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	c.gets.Add(1)
	return c.Client.Get(ctx, key, obj, opts...)
}

func TestBundleIsParsedOncePerResourceVersionAndFollowsRotation(t *testing.T) {
	old, next := cardtest.NewCA(t, "example.org"), cardtest.NewCA(t, "example.org")
	obj := configMap(map[string]string{DefaultKey: string(old.SPIFFEBundle(t))})
	c := &countingReader{Client: newClient(t, obj)}
	cm, err := NewConfigMap(c, cmName, "", td)
	if err != nil {
		t.Fatal(err)
	}
	first, err := cm.Bundles(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	second, err := cm.Bundles(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if first != second {
		t.Error("an unchanged ConfigMap was parsed again")
	}

	// Rotation: the new CA is in, the old one out.
	var cur corev1.ConfigMap
	if err := c.Get(t.Context(), cmName, &cur); err != nil {
		t.Fatal(err)
	}
	cur.Data[DefaultKey] = string(next.SPIFFEBundle(t))
	if err := c.Update(t.Context(), &cur); err != nil {
		t.Fatal(err)
	}
	rotatedSet, err := cm.Bundles(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	rotated, _ := rotatedSet.Get(td)
	if rotated == nil || !rotated.HasX509Authority(next.Cert) || rotated.HasX509Authority(old.Cert) {
		t.Error("the rotated bundle is not the new one")
	}

	// A broken update is an error, not the previous bundle: the caller
	// reports it instead of verifying against a CA the cluster dropped.
	cur.Data[DefaultKey] = "garbage"
	if err := c.Update(t.Context(), &cur); err != nil {
		t.Fatal(err)
	}
	if _, err := cm.Bundles(t.Context()); err == nil {
		t.Error("a broken bundle update was not reported")
	}
}

func TestNewConfigMapRefusesAnIncompleteSetup(t *testing.T) {
	c := newClient(t)
	for name, f := range map[string]func() error{
		"no client":       func() error { _, err := NewConfigMap(nil, cmName, "", td); return err },
		"no name":         func() error { _, err := NewConfigMap(c, types.NamespacedName{Namespace: "x"}, "", td); return err },
		"no namespace":    func() error { _, err := NewConfigMap(c, types.NamespacedName{Name: "x"}, "", td); return err },
		"no trust domain": func() error { _, err := NewConfigMap(c, cmName, "", spiffeid.TrustDomain{}); return err },
	} {
		if err := f(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestLoadErrorsAreCountedByReason(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		err    error
		reason string
	}{
		{ErrNotFound, "configmap_not_found"},
		{ErrEmpty, "empty_bundle"},
		{ErrInvalid, "invalid_bundle"},
		{errors.New("forbidden"), "read_failed"},
	} {
		m.loaded(nil, fmt.Errorf("wrapped: %w", tt.err))
		if got := testutil.ToFloat64(m.loadErrors.WithLabelValues(tt.reason)); got != 1 {
			t.Errorf("%v: %s = %v, want 1", tt.err, tt.reason, got)
		}
	}
}
