package netpolicy

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/agentid/agentid/api/v1alpha1"
)

// Mode is what a policy does to the pods it selects.
type Mode string

const (
	// Permissive allows all ingress and egress.
	Permissive Mode = "permissive"
	// Restrictive admits only the operator and lets the pods reach DNS and
	// the API server.
	Restrictive Mode = "restrictive"
)

// Labels on every policy the operator writes. The policy-type and
// agentcard keys are Kagenti's, so selectors written for its policies
// keep working.
const (
	LabelManagedBy  = "app.kubernetes.io/managed-by"
	ManagedBy       = "agentid-operator"
	LabelPolicyType = "kagenti.dev/policy-type"
	PolicyType      = "signature-verification"
	LabelAgentCard  = "kagenti.dev/agentcard"
)

// The API server is found through the EndpointSlices of this Service.
const (
	APIServerNamespace = "default"
	APIServerService   = "kubernetes"
)

// LabelNamespaceName is the label the API server sets on every namespace
// to its name; namespace peers select by it.
const LabelNamespaceName = "kubernetes.io/metadata.name"

// nameSuffix ends every policy name; Kagenti's policies end the same way.
const nameSuffix = "-signature-policy"

// maxName keeps policy names usable as label values and by tools that
// derive names of their own from them.
const maxName = validation.DNS1123LabelMaxLength

// Name is the NetworkPolicy name of the AgentCard named card:
// <card>-signature-policy, or, when that would exceed 63 characters, the
// card name cut short followed by a hash of the whole name. Cards are unique
// per namespace, so unlike Kagenti's <workload>-signature-policy, a
// Deployment and a StatefulSet of one name do not share a policy.
func Name(card string) string {
	if len(card)+len(nameSuffix) <= maxName {
		return card + nameSuffix
	}
	sum := sha256.Sum256([]byte(card))
	hash := hex.EncodeToString(sum[:])[:10]
	prefix := strings.TrimRight(card[:maxName-len(nameSuffix)-1-len(hash)], "-.")
	return prefix + "-" + hash + nameSuffix
}

// Config is what the restrictive policy admits, from the operator's flags.
type Config struct {
	// OperatorNamespace and OperatorPods select the operator's pods, the
	// only ingress of a restrictive policy.
	OperatorNamespace string
	OperatorPods      *metav1.LabelSelector
	// DNSNamespace ("" for any namespace) and DNSPods select the cluster
	// DNS pods that a restrictive policy may reach on port 53, UDP and TCP;
	// nil DNSPods allows no DNS.
	DNSNamespace string
	DNSPods      *metav1.LabelSelector
}

// Validate reports a configuration that cannot select the operator.
func (c Config) Validate() error {
	var errs []error
	if c.OperatorNamespace == "" {
		errs = append(errs, errors.New("netpolicy: no operator namespace"))
	}
	if isEmpty(c.OperatorPods) {
		errs = append(errs, errors.New("netpolicy: the operator's pod selector is empty: a restrictive policy would admit every pod of the operator's namespace"))
	}
	for _, s := range []*metav1.LabelSelector{c.OperatorPods, c.DNSPods} {
		if s != nil {
			if _, err := metav1.LabelSelectorAsSelector(s); err != nil {
				errs = append(errs, fmt.Errorf("netpolicy: %w", err))
			}
		}
	}
	return errors.Join(errs...)
}

// Spec is one policy to build.
type Spec struct {
	// Card is the AgentCard the policy belongs to (name, namespace, UID).
	Card *v1alpha1.AgentCard
	// Selector is the workload's spec.selector.
	Selector *metav1.LabelSelector
	Mode     Mode
	// APIServer is the API-server egress of a restrictive policy
	// (APIServerEgress); empty denies it.
	APIServer []networkingv1.NetworkPolicyEgressRule
}

// Build returns the NetworkPolicy of s, without its ownerReference (which
// needs a scheme; Enforcer sets it).
func Build(s Spec, c Config) (*networkingv1.NetworkPolicy, error) {
	if s.Card == nil {
		return nil, errors.New("netpolicy: no AgentCard")
	}
	if s.Selector == nil {
		return nil, errors.New("netpolicy: the workload has no selector")
	}
	if isEmpty(s.Selector) {
		return nil, errors.New("netpolicy: the workload's selector is empty: a policy would select every pod of the namespace")
	}
	if _, err := metav1.LabelSelectorAsSelector(s.Selector); err != nil {
		return nil, fmt.Errorf("netpolicy: the workload's selector: %w", err)
	}
	labels := map[string]string{
		LabelManagedBy:                  ManagedBy,
		LabelPolicyType:                 PolicyType,
		v1alpha1.LabelNetworkPolicyMode: string(s.Mode),
	}
	if len(validation.IsValidLabelValue(s.Card.Name)) == 0 {
		labels[LabelAgentCard] = s.Card.Name
	}
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: s.Card.Namespace, Name: Name(s.Card.Name), Labels: labels},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: *s.Selector.DeepCopy(),
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
		},
	}
	switch s.Mode {
	case Permissive:
		// One empty rule each way: everything is allowed.
		np.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{}}
		np.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{{}}
	case Restrictive:
		if err := c.Validate(); err != nil {
			return nil, err
		}
		np.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{
			From: []networkingv1.NetworkPolicyPeer{{
				NamespaceSelector: namespace(c.OperatorNamespace),
				PodSelector:       c.OperatorPods.DeepCopy(),
			}},
		}}
		if c.DNSPods != nil {
			np.Spec.Egress = append(np.Spec.Egress, networkingv1.NetworkPolicyEgressRule{
				To: []networkingv1.NetworkPolicyPeer{{
					NamespaceSelector: namespace(c.DNSNamespace),
					PodSelector:       c.DNSPods.DeepCopy(),
				}},
				Ports: []networkingv1.NetworkPolicyPort{port(corev1.ProtocolUDP, 53), port(corev1.ProtocolTCP, 53)},
			})
		}
		for _, r := range s.APIServer {
			np.Spec.Egress = append(np.Spec.Egress, *r.DeepCopy())
		}
	default:
		return nil, fmt.Errorf("netpolicy: unknown mode %q", s.Mode)
	}
	return np, nil
}

// namespace selects the namespace named name, or every namespace for "".
func namespace(name string) *metav1.LabelSelector {
	if name == "" {
		return &metav1.LabelSelector{}
	}
	return &metav1.LabelSelector{MatchLabels: map[string]string{LabelNamespaceName: name}}
}

func port(p corev1.Protocol, n int32) networkingv1.NetworkPolicyPort {
	v := intstr.FromInt32(n)
	return networkingv1.NetworkPolicyPort{Protocol: &p, Port: &v}
}

func isEmpty(s *metav1.LabelSelector) bool {
	return s == nil || len(s.MatchLabels) == 0 && len(s.MatchExpressions) == 0
}

// APIServerEgress turns the EndpointSlices of the API server's Service
// (default/kubernetes) into egress rules: each address as a /32 or /128
// ipBlock, with the ports its slice lists (protocol TCP when unset).
// Addresses that share their ports share a rule; the rules and their peers
// come out in a fixed order, so an unchanged cluster rebuilds an unchanged
// policy. Slices of other Services, FQDN slices, endpoints marked not
// ready, unparsable addresses and ports without a number (which would mean
// every port) are left out. The count is the number of addresses; when it
// is 0, note says why.
func APIServerEgress(eps []discoveryv1.EndpointSlice) (rules []networkingv1.NetworkPolicyEgressRule, count int, note string) {
	type key struct {
		proto corev1.Protocol
		port  int32
	}
	byPorts := map[string]map[netip.Addr]bool{} // port set -> addresses
	portsOf := map[string][]key{}
	seen := 0
	for i := range eps {
		s := &eps[i]
		if s.Namespace != APIServerNamespace || s.Labels[discoveryv1.LabelServiceName] != APIServerService {
			continue
		}
		seen++
		if s.AddressType != discoveryv1.AddressTypeIPv4 && s.AddressType != discoveryv1.AddressTypeIPv6 {
			continue
		}
		var ports []key
		for _, p := range s.Ports {
			if p.Port == nil || *p.Port <= 0 {
				continue
			}
			proto := corev1.ProtocolTCP
			if p.Protocol != nil {
				proto = *p.Protocol
			}
			ports = append(ports, key{proto, *p.Port})
		}
		if len(ports) == 0 {
			continue
		}
		slicesSortCompact(&ports, func(a, b key) int { return cmp.Or(cmp.Compare(a.proto, b.proto), cmp.Compare(a.port, b.port)) })
		var k strings.Builder
		for _, p := range ports {
			k.WriteString(string(p.proto) + "/" + strconv.Itoa(int(p.port)) + ",")
		}
		for _, e := range s.Endpoints {
			if e.Conditions.Ready != nil && !*e.Conditions.Ready {
				continue
			}
			for _, a := range e.Addresses {
				addr, err := netip.ParseAddr(a)
				if err != nil || addr.Zone() != "" {
					continue
				}
				addr = addr.Unmap()
				if addr.Is4() != (s.AddressType == discoveryv1.AddressTypeIPv4) {
					continue
				}
				if byPorts[k.String()] == nil {
					byPorts[k.String()] = map[netip.Addr]bool{}
					portsOf[k.String()] = ports
				}
				byPorts[k.String()][addr] = true
			}
		}
	}
	keys := make([]string, 0, len(byPorts))
	for k := range byPorts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	all := map[netip.Addr]bool{}
	for _, k := range keys {
		addrs := make([]netip.Addr, 0, len(byPorts[k]))
		for a := range byPorts[k] {
			addrs = append(addrs, a)
			all[a] = true
		}
		slices.SortFunc(addrs, netip.Addr.Compare)
		var r networkingv1.NetworkPolicyEgressRule
		for _, a := range addrs {
			r.To = append(r.To, networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: netip.PrefixFrom(a, a.BitLen()).String()}})
		}
		for _, p := range portsOf[k] {
			r.Ports = append(r.Ports, port(p.proto, p.port))
		}
		rules = append(rules, r)
	}
	switch {
	case len(all) > 0:
	case seen == 0:
		note = "no EndpointSlice of Service " + APIServerNamespace + "/" + APIServerService + " found"
	default:
		note = "the EndpointSlices of Service " + APIServerNamespace + "/" + APIServerService + " list no ready IP address with a port"
	}
	return rules, len(all), note
}

func slicesSortCompact[T comparable](s *[]T, f func(a, b T) int) {
	slices.SortFunc(*s, f)
	*s = slices.Compact(*s)
}
