package netpolicy

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/agentid/agentid/api/v1alpha1"
)

func testConfig() Config {
	return Config{
		OperatorNamespace: "agentid-system",
		OperatorPods:      &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": "agentid-operator"}},
		DNSNamespace:      "kube-system",
		DNSPods:           &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "kube-dns"}},
	}
}

func testCard(name string) *v1alpha1.AgentCard {
	return &v1alpha1.AgentCard{ObjectMeta: metav1.ObjectMeta{Namespace: "agents", Name: name, UID: types.UID("uid-" + name)}}
}

func TestName(t *testing.T) {
	long := strings.Repeat("a", 40) + "-weather-agent-card"
	tests := []struct {
		name string
		card string
		want string // "" checks only the properties below
	}{
		{"a short card name keeps Kagenti's suffix", "weather-card", "weather-card-signature-policy"},
		{"a card name that just fits (63 characters with the suffix) is kept whole", strings.Repeat("b", 63-len(nameSuffix)), strings.Repeat("b", 63-len(nameSuffix)) + nameSuffix},
		{"one character more is cut and hashed", strings.Repeat("b", 64-len(nameSuffix)), ""},
		{"a long name is cut and hashed", long, ""},
		{"a long name cut at a dot or dash does not end the prefix with it", strings.Repeat("c", 34) + ".-" + strings.Repeat("d", 40), ""},
		{"a 253-character card name (the longest a card can have)", strings.Repeat("e", 253), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Name(tt.card)
			if tt.want != "" && got != tt.want {
				t.Errorf("Name(%q) = %q, want %q", tt.card, got, tt.want)
			}
			if len(got) > 63 {
				t.Errorf("Name(%q) = %q: %d characters, want at most 63", tt.card, got, len(got))
			}
			if errs := validation.IsDNS1123Subdomain(got); len(errs) > 0 {
				t.Errorf("Name(%q) = %q is not a valid object name: %v", tt.card, got, errs)
			}
			if errs := validation.IsValidLabelValue(got); len(errs) > 0 {
				t.Errorf("Name(%q) = %q is not a valid label value: %v", tt.card, got, errs)
			}
			if strings.Contains(got, ".-") || strings.Contains(got, "--") {
				t.Errorf("Name(%q) = %q joins the parts with a dot or dash left over", tt.card, got)
			}
			if Name(tt.card) != got {
				t.Error("Name is not deterministic")
			}
		})
	}
}

func TestNameDoesNotCollide(t *testing.T) {
	// Long names that differ only past the cut, and a Deployment's and a
	// StatefulSet's cards for one workload name.
	prefix := strings.Repeat("x", 60)
	names := []string{prefix + "-one", prefix + "-two", prefix + "-one2", "weather-deployment-card", "weather-statefulset-card", "weather"}
	seen := map[string]string{}
	for _, n := range names {
		got := Name(n)
		if other, ok := seen[got]; ok {
			t.Errorf("cards %q and %q share the policy name %q", n, other, got)
		}
		seen[got] = n
	}
}

func TestBuildPermissive(t *testing.T) {
	sel := &metav1.LabelSelector{
		MatchLabels: map[string]string{"app": "weather"},
		MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"agent", "edge"}},
			{Key: "canary", Operator: metav1.LabelSelectorOpDoesNotExist},
		},
	}
	np, err := Build(Spec{Card: testCard("weather-card"), Selector: sel, Mode: Permissive}, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	if np.Namespace != "agents" || np.Name != "weather-card-signature-policy" {
		t.Errorf("policy %s/%s", np.Namespace, np.Name)
	}
	if !equality.Semantic.DeepEqual(np.Spec.PodSelector, *sel) {
		t.Errorf("podSelector = %+v, want the workload's selector with matchLabels and matchExpressions %+v", np.Spec.PodSelector, sel)
	}
	sel.MatchLabels["app"] = "changed"
	if np.Spec.PodSelector.MatchLabels["app"] != "weather" {
		t.Error("the policy shares its selector with the workload's")
	}
	want := networkingv1.NetworkPolicySpec{
		PodSelector: np.Spec.PodSelector,
		PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
		Ingress:     []networkingv1.NetworkPolicyIngressRule{{}},
		Egress:      []networkingv1.NetworkPolicyEgressRule{{}},
	}
	if !equality.Semantic.DeepEqual(np.Spec, want) {
		t.Errorf("spec = %+v, want everything allowed both ways", np.Spec)
	}
	for k, v := range map[string]string{LabelManagedBy: ManagedBy, LabelPolicyType: PolicyType, LabelAgentCard: "weather-card", v1alpha1.LabelNetworkPolicyMode: "permissive"} {
		if np.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, np.Labels[k], v)
		}
	}
}

func TestBuildRestrictive(t *testing.T) {
	apiServer, _, _ := APIServerEgress([]discoveryv1.EndpointSlice{apiSlice("kubernetes", discoveryv1.AddressTypeIPv4, []int32{443}, "172.18.0.2")})
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "weather"}}
	operatorPeer := networkingv1.NetworkPolicyPeer{
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{LabelNamespaceName: "agentid-system"}},
		PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": "agentid-operator"}},
	}
	dnsPorts := []networkingv1.NetworkPolicyPort{port(corev1.ProtocolUDP, 53), port(corev1.ProtocolTCP, 53)}
	dnsPods := &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "kube-dns"}}
	tests := []struct {
		name   string
		config func(c *Config)
		egress []networkingv1.NetworkPolicyEgressRule
	}{{
		name:   "ingress from the operator only; egress to kube-system DNS on UDP and TCP 53 and to the API server's endpoints",
		config: func(c *Config) {},
		egress: append([]networkingv1.NetworkPolicyEgressRule{{
			To:    []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{LabelNamespaceName: "kube-system"}}, PodSelector: dnsPods}},
			Ports: dnsPorts,
		}}, apiServer...),
	}, {
		name:   "DNS in any namespace when no DNS namespace is configured",
		config: func(c *Config) { c.DNSNamespace = "" },
		egress: append([]networkingv1.NetworkPolicyEgressRule{{
			To:    []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{}, PodSelector: dnsPods}},
			Ports: dnsPorts,
		}}, apiServer...),
	}, {
		name:   "no DNS egress without a DNS pod selector",
		config: func(c *Config) { c.DNSPods = nil },
		egress: apiServer,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig()
			tt.config(&c)
			np, err := Build(Spec{Card: testCard("weather-card"), Selector: sel, Mode: Restrictive, APIServer: apiServer}, c)
			if err != nil {
				t.Fatal(err)
			}
			want := networkingv1.NetworkPolicySpec{
				PodSelector: *sel,
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
				Ingress:     []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{operatorPeer}}},
				Egress:      tt.egress,
			}
			if !equality.Semantic.DeepEqual(np.Spec, want) {
				t.Errorf("spec =\n%+v\nwant\n%+v", np.Spec, want)
			}
			if np.Labels[v1alpha1.LabelNetworkPolicyMode] != "restrictive" {
				t.Errorf("mode label = %q", np.Labels[v1alpha1.LabelNetworkPolicyMode])
			}
		})
	}
}

func TestBuildWithoutAPIServerDeniesItsEgress(t *testing.T) {
	c := testConfig()
	c.DNSPods = nil
	np, err := Build(Spec{Card: testCard("w"), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "w"}}, Mode: Restrictive}, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(np.Spec.Egress) != 0 || len(np.Spec.PolicyTypes) != 2 {
		t.Errorf("egress %+v, policy types %v: want Egress isolated with no rule", np.Spec.Egress, np.Spec.PolicyTypes)
	}
}

func TestBuildRefuses(t *testing.T) {
	good := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "w"}}
	tests := []struct {
		name    string
		spec    Spec
		config  func(c *Config)
		wantErr string
	}{
		{"no selector", Spec{Card: testCard("w"), Mode: Permissive}, nil, "no selector"},
		{"an empty selector, which would select every pod of the namespace", Spec{Card: testCard("w"), Selector: &metav1.LabelSelector{}, Mode: Restrictive}, nil, "every pod"},
		{"an invalid selector", Spec{Card: testCard("w"), Selector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "Near"}}}, Mode: Permissive}, nil, "selector"},
		{"an unknown mode", Spec{Card: testCard("w"), Selector: good, Mode: "open"}, nil, "unknown mode"},
		{"a restrictive policy without the operator's namespace", Spec{Card: testCard("w"), Selector: good, Mode: Restrictive}, func(c *Config) { c.OperatorNamespace = "" }, "operator namespace"},
		{"a restrictive policy with an empty operator pod selector", Spec{Card: testCard("w"), Selector: good, Mode: Restrictive}, func(c *Config) { c.OperatorPods = &metav1.LabelSelector{} }, "pod selector is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig()
			if tt.config != nil {
				tt.config(&c)
			}
			_, err := Build(tt.spec, c)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one about %q", err, tt.wantErr)
			}
		})
	}
}

func TestBuildLongCardName(t *testing.T) {
	card := testCard(strings.Repeat("w", 70))
	np, err := Build(Spec{Card: card, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "w"}}, Mode: Permissive}, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	if np.Name != Name(card.Name) || len(np.Name) > 63 {
		t.Errorf("name %q", np.Name)
	}
	if _, ok := np.Labels[LabelAgentCard]; ok {
		t.Errorf("label %s = %q: a card name over 63 characters is no label value", LabelAgentCard, np.Labels[LabelAgentCard])
	}
}

func apiSlice(name string, at discoveryv1.AddressType, ports []int32, addrs ...string) discoveryv1.EndpointSlice {
	s := discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: APIServerNamespace, Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: APIServerService}},
		AddressType: at,
	}
	for _, p := range ports {
		s.Ports = append(s.Ports, discoveryv1.EndpointPort{Name: ptr("https"), Port: ptr(p)})
	}
	for _, a := range addrs {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{a}})
	}
	return s
}

func ptr[T any](v T) *T { return &v }

func tcp(n int32) networkingv1.NetworkPolicyPort { return port(corev1.ProtocolTCP, n) }

func cidrs(cs ...string) []networkingv1.NetworkPolicyPeer {
	var out []networkingv1.NetworkPolicyPeer
	for _, c := range cs {
		out = append(out, networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: c}})
	}
	return out
}

func TestAPIServerEgress(t *testing.T) {
	udp := corev1.ProtocolUDP
	notReady := apiSlice("kubernetes-b", discoveryv1.AddressTypeIPv4, []int32{6443}, "10.0.0.9")
	notReady.Endpoints[0].Conditions.Ready = ptr(false)
	mixed := apiSlice("kubernetes-c", discoveryv1.AddressTypeIPv4, nil, "10.0.0.3")
	mixed.Ports = []discoveryv1.EndpointPort{{Port: ptr(int32(8443))}, {Port: ptr(int32(443))}, {Protocol: &udp, Port: ptr(int32(8443))}, {Name: ptr("any")}}
	other := apiSlice("other", discoveryv1.AddressTypeIPv4, []int32{6443}, "10.9.9.9")
	other.Labels[discoveryv1.LabelServiceName] = "not-kubernetes"
	elsewhere := apiSlice("kubernetes", discoveryv1.AddressTypeIPv4, []int32{6443}, "10.8.8.8")
	elsewhere.Namespace = "kube-system"

	tests := []struct {
		name      string
		slices    []discoveryv1.EndpointSlice
		want      []networkingv1.NetworkPolicyEgressRule
		wantCount int
		wantNote  string
	}{{
		name:      "one IPv4 endpoint on 6443 is one /32 on TCP 6443",
		slices:    []discoveryv1.EndpointSlice{apiSlice("kubernetes", discoveryv1.AddressTypeIPv4, []int32{6443}, "172.18.0.2")},
		want:      []networkingv1.NetworkPolicyEgressRule{{To: cidrs("172.18.0.2/32"), Ports: []networkingv1.NetworkPolicyPort{tcp(6443)}}},
		wantCount: 1,
	}, {
		name:      "the port is the slice's, 443 on distributions that serve there: nothing is hard-coded",
		slices:    []discoveryv1.EndpointSlice{apiSlice("kubernetes", discoveryv1.AddressTypeIPv4, []int32{443}, "10.0.0.2", "10.0.0.1")},
		want:      []networkingv1.NetworkPolicyEgressRule{{To: cidrs("10.0.0.1/32", "10.0.0.2/32"), Ports: []networkingv1.NetworkPolicyPort{tcp(443)}}},
		wantCount: 2,
	}, {
		name:      "IPv6 endpoints are /128, in canonical form",
		slices:    []discoveryv1.EndpointSlice{apiSlice("kubernetes-v6", discoveryv1.AddressTypeIPv6, []int32{6443}, "fd00:0:0:0::2", "2001:db8::1")},
		want:      []networkingv1.NetworkPolicyEgressRule{{To: cidrs("2001:db8::1/128", "fd00::2/128"), Ports: []networkingv1.NetworkPolicyPort{tcp(6443)}}},
		wantCount: 2,
	}, {
		name: "dual stack: slices with the same ports share a rule",
		slices: []discoveryv1.EndpointSlice{
			apiSlice("kubernetes", discoveryv1.AddressTypeIPv4, []int32{6443}, "10.0.0.1"),
			apiSlice("kubernetes-v6", discoveryv1.AddressTypeIPv6, []int32{6443}, "fd00::1"),
		},
		want:      []networkingv1.NetworkPolicyEgressRule{{To: cidrs("10.0.0.1/32", "fd00::1/128"), Ports: []networkingv1.NetworkPolicyPort{tcp(6443)}}},
		wantCount: 2,
	}, {
		name: "several ports and protocols, sorted; a port without a number (every port) is left out; different port sets are different rules",
		slices: []discoveryv1.EndpointSlice{
			mixed,
			apiSlice("kubernetes", discoveryv1.AddressTypeIPv4, []int32{6443}, "10.0.0.1", "10.0.0.1"),
		},
		want: []networkingv1.NetworkPolicyEgressRule{
			{To: cidrs("10.0.0.3/32"), Ports: []networkingv1.NetworkPolicyPort{tcp(443), tcp(8443), port(corev1.ProtocolUDP, 8443)}},
			{To: cidrs("10.0.0.1/32"), Ports: []networkingv1.NetworkPolicyPort{tcp(6443)}},
		},
		wantCount: 2,
	}, {
		name: "endpoints marked not ready, other Services, other namespaces, FQDN slices and bad addresses are left out",
		slices: []discoveryv1.EndpointSlice{
			notReady, other, elsewhere,
			apiSlice("kubernetes-fqdn", discoveryv1.AddressTypeFQDN, []int32{6443}, "api.example.org"),
			apiSlice("kubernetes-bad", discoveryv1.AddressTypeIPv4, []int32{6443}, "not-an-ip", "fd00::1", "::ffff:10.0.0.7", "fe80::1%eth0"),
			apiSlice("kubernetes", discoveryv1.AddressTypeIPv4, []int32{6443}, "10.0.0.1"),
		},
		want:      []networkingv1.NetworkPolicyEgressRule{{To: cidrs("10.0.0.1/32", "10.0.0.7/32"), Ports: []networkingv1.NetworkPolicyPort{tcp(6443)}}},
		wantCount: 2,
	}, {
		name:     "no slice: no rule, and the note says so",
		slices:   []discoveryv1.EndpointSlice{other},
		wantNote: "no EndpointSlice of Service default/kubernetes",
	}, {
		name:     "slices without usable endpoints: no rule, and the note says so",
		slices:   []discoveryv1.EndpointSlice{notReady, apiSlice("kubernetes", discoveryv1.AddressTypeIPv4, nil, "10.0.0.1")},
		wantNote: "list no ready IP address with a port",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, n, note := APIServerEgress(tt.slices)
			if !equality.Semantic.DeepEqual(got, tt.want) {
				t.Errorf("rules =\n%+v\nwant\n%+v", got, tt.want)
			}
			if n != tt.wantCount {
				t.Errorf("count = %d, want %d", n, tt.wantCount)
			}
			if tt.wantNote == "" && note != "" || !strings.Contains(note, tt.wantNote) {
				t.Errorf("note = %q, want %q", note, tt.wantNote)
			}
			// The same slices in another order build the same rules.
			rev := append([]discoveryv1.EndpointSlice(nil), tt.slices...)
			for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
				rev[i], rev[j] = rev[j], rev[i]
			}
			if again, _, _ := APIServerEgress(rev); !equality.Semantic.DeepEqual(again, got) {
				t.Errorf("the order of the slices changes the rules:\n%+v\n%+v", again, got)
			}
		})
	}
}
