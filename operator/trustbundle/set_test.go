package trustbundle

import (
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/agentid/agentid/operator/internal/cardtest"
)

// bundleSet is a bundle set document of the given members (names as
// written) and SPIFFE bundles.
func bundleSet(members map[string][]byte) string {
	var parts []string
	for name, b := range members {
		parts = append(parts, `"`+name+`": `+string(b))
	}
	slices.Sort(parts)
	return "{" + strings.Join(parts, ", ") + "}"
}

func TestBundlesOfSeveralTrustDomains(t *testing.T) {
	ours, partner, third := cardtest.NewCA(t, "example.org"), cardtest.NewCA(t, "partner.example"), cardtest.NewCA(t, "third.example")
	tests := []struct {
		name string
		data map[string]string
		// want maps each trust domain to the CA its bundle must hold.
		want    map[string]*cardtest.CA
		wantErr string
	}{
		{
			name: "a single bundle under the main key is the operator's trust domain's",
			data: map[string]string{DefaultKey: string(ours.SPIFFEBundle(t))},
			want: map[string]*cardtest.CA{"example.org": ours},
		},
		{
			name: "a bundle set under the main key gives each member's trust domain its bundle",
			data: map[string]string{DefaultKey: bundleSet(map[string][]byte{"example.org": ours.SPIFFEBundle(t), "spiffe://partner.example": partner.SPIFFEBundle(t)})},
			want: map[string]*cardtest.CA{"example.org": ours, "partner.example": partner},
		},
		{
			name: "a bundle set need not hold the operator's trust domain",
			data: map[string]string{DefaultKey: bundleSet(map[string][]byte{"partner.example": partner.SPIFFEBundle(t)})},
			want: map[string]*cardtest.CA{"partner.example": partner},
		},
		{
			name: "federated keys add trust domains to the main key's bundle, in SPIFFE JSON or PEM",
			data: map[string]string{
				DefaultKey:                             string(ours.SPIFFEBundle(t)),
				FederatedKeyPrefix + "partner.example": string(partner.SPIFFEBundle(t)),
				FederatedKeyPrefix + "third.example":   string(third.PEM()),
				"unrelated":                            "not a bundle, not read",
			},
			want: map[string]*cardtest.CA{"example.org": ours, "partner.example": partner, "third.example": third},
		},
		{
			name: "federated keys alone are enough",
			data: map[string]string{FederatedKeyPrefix + "partner.example": string(partner.SPIFFEBundle(t))},
			want: map[string]*cardtest.CA{"partner.example": partner},
		},
		{
			name:    "a trust domain in the set and in a federated key is refused as ambiguous",
			data:    map[string]string{DefaultKey: bundleSet(map[string][]byte{"partner.example": partner.SPIFFEBundle(t)}), FederatedKeyPrefix + "partner.example": string(partner.SPIFFEBundle(t))},
			wantErr: "a second bundle for trust domain partner.example",
		},
		{
			name:    "the operator's trust domain in the main key and in a federated key is refused",
			data:    map[string]string{DefaultKey: string(ours.SPIFFEBundle(t)), FederatedKeyPrefix + "example.org": string(ours.SPIFFEBundle(t))},
			wantErr: "a second bundle for trust domain example.org",
		},
		{
			name:    "one trust domain written twice in a set is refused",
			data:    map[string]string{DefaultKey: bundleSet(map[string][]byte{"partner.example": partner.SPIFFEBundle(t), "spiffe://partner.example": partner.SPIFFEBundle(t)})},
			wantErr: "given twice",
		},
		{
			name:    "a set member that is no trust domain is refused",
			data:    map[string]string{DefaultKey: bundleSet(map[string][]byte{"Not A Domain": partner.SPIFFEBundle(t)})},
			wantErr: `member "Not A Domain"`,
		},
		{
			name:    "a broken member fails the whole set, not only its trust domain",
			data:    map[string]string{DefaultKey: bundleSet(map[string][]byte{"example.org": ours.SPIFFEBundle(t), "partner.example": []byte(`{"keys": []}`)})},
			wantErr: `member "partner.example"`,
		},
		{
			name:    "a broken federated key fails the whole set",
			data:    map[string]string{DefaultKey: string(ours.SPIFFEBundle(t)), FederatedKeyPrefix + "partner.example": "garbage"},
			wantErr: `key "federated.partner.example"`,
		},
		{
			name:    "a federated key that names no trust domain is refused",
			data:    map[string]string{DefaultKey: string(ours.SPIFFEBundle(t)), FederatedKeyPrefix + "Bad_Domain": string(partner.PEM())},
			wantErr: `key "federated.Bad_Domain"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			m, err := NewMetrics(reg)
			if err != nil {
				t.Fatal(err)
			}
			cm, err := NewConfigMap(newClient(t, []client.Object{configMap(tt.data)}...), cmName, "", td, WithMetrics(m))
			if err != nil {
				t.Fatal(err)
			}
			set, err := cm.Bundles(t.Context())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Bundles = %v, %v; want an error containing %q", set, err, tt.wantErr)
				}
				if testutil.ToFloat64(m.trustDomains) != 0 {
					t.Error("a failed load left trust domains in the metric")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for name, ca := range tt.want {
				want = append(want, name)
				b, ok := set.Get(ca.TrustDomain)
				if !ok || len(b.X509Authorities()) != 1 || !b.HasX509Authority(ca.Cert) {
					t.Errorf("trust domain %s: bundle %v, want the CA of %s", name, b, ca.TrustDomain)
				}
			}
			slices.Sort(want)
			if got := TrustDomains(set); !slices.Equal(got, want) {
				t.Errorf("trust domains %v, want %v", got, want)
			}
			if got := testutil.ToFloat64(m.trustDomains); got != float64(len(want)) {
				t.Errorf("agentid_trust_bundle_trust_domains = %v, want %d", got, len(want))
			}
		})
	}
}

func TestBinaryDataKeysAreReadToo(t *testing.T) {
	ours, partner := cardtest.NewCA(t, "example.org"), cardtest.NewCA(t, "partner.example")
	obj := configMap(map[string]string{DefaultKey: string(ours.SPIFFEBundle(t))})
	obj.BinaryData = map[string][]byte{FederatedKeyPrefix + "partner.example": partner.PEM()}
	cm, err := NewConfigMap(newClient(t, obj), cmName, "", td)
	if err != nil {
		t.Fatal(err)
	}
	set, err := cm.Bundles(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got := TrustDomains(set); !slices.Equal(got, []string{"example.org", "partner.example"}) {
		t.Errorf("trust domains %v", got)
	}
}
