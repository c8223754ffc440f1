package trustbundle

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agentid/agentid/agentcard"
)

// DefaultKey is the ConfigMap key of the bundle unless configured otherwise:
// the name SPIRE's Kubernetes bundle notifier writes.
const DefaultKey = "bundle.spiffe"

// FederatedKeyPrefix starts the ConfigMap keys that hold the bundle of
// one more trust domain each: "federated.partner.example" is the bundle
// of partner.example, SPIFFE JSON or PEM like the main key.
const FederatedKeyPrefix = "federated."

// Errors of Bundle, to test with errors.Is; the metric reason of each is in
// brackets.
var (
	// ErrNotFound: the ConfigMap does not exist [configmap_not_found].
	ErrNotFound = errors.New("trustbundle: ConfigMap not found")
	// ErrEmpty: the key is missing or empty [empty_bundle].
	ErrEmpty = errors.New("trustbundle: bundle key not found or empty")
	// ErrInvalid: the bundle does not parse or holds no CA [invalid_bundle].
	ErrInvalid = errors.New("trustbundle: invalid bundle")
)

// ConfigMap is the set of trust bundles read from a ConfigMap: the main key
// holds the bundle of the operator's trust domain or a bundle set document,
// and each FederatedKeyPrefix key the bundle of one more trust domain (see
// Bundles). It is safe for concurrent use.
type ConfigMap struct {
	reader      client.Reader
	name        types.NamespacedName
	key         string
	trustDomain spiffeid.TrustDomain

	metrics *Metrics

	mu  sync.Mutex
	uid types.UID
	rv  string
	set *x509bundle.Set
	err error
}

// Option configures a ConfigMap.
type Option func(*ConfigMap)

// WithMetrics records bundle loads in m.
func WithMetrics(m *Metrics) Option { return func(c *ConfigMap) { c.metrics = m } }

// NewConfigMap returns the bundles held in ConfigMap name, read with
// reader: under key ("" means DefaultKey) the bundle of trust domain td or
// a bundle set, and under FederatedKeyPrefix keys more trust domains.
func NewConfigMap(reader client.Reader, name types.NamespacedName, key string, td spiffeid.TrustDomain, opts ...Option) (*ConfigMap, error) {
	if reader == nil {
		return nil, errors.New("trustbundle: no client")
	}
	if name.Name == "" || name.Namespace == "" {
		return nil, errors.New("trustbundle: the ConfigMap's name and namespace are required")
	}
	if td.IsZero() {
		return nil, errors.New("trustbundle: no trust domain")
	}
	if key == "" {
		key = DefaultKey
	}
	c := &ConfigMap{reader: reader, name: name, key: key, trustDomain: td}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Name returns the ConfigMap's namespace and name.
func (c *ConfigMap) Name() types.NamespacedName { return c.name }

// TrustDomain returns the trust domain whose bundle a single bundle under
// the main key is.
func (c *ConfigMap) TrustDomain() spiffeid.TrustDomain { return c.trustDomain }

// Bundles returns the current bundles, one per trust domain. The main key
// holds either one bundle (SPIFFE JSON or PEM), which is the operator's
// trust domain's, or a bundle set: a JSON object whose members are trust
// domains ("partner.example" or "spiffe://partner.example") and whose
// values are SPIFFE bundles. A JSON document with a "keys" member is a
// single bundle, so a trust domain literally named keys is written
// spiffe://keys in a set. Each key FederatedKeyPrefix+<trust domain> adds
// that trust domain's bundle. A trust domain given twice, or a ConfigMap
// with no bundle at all, is an error: the error says which of the
// ConfigMap, its keys or their content is wrong, and no partial set is
// returned, so a broken update never silently drops a trust domain.
func (c *ConfigMap) Bundles(ctx context.Context) (*x509bundle.Set, error) {
	var cm corev1.ConfigMap
	if err := c.reader.Get(ctx, c.name, &cm); err != nil {
		if apierrors.IsNotFound(err) {
			err = fmt.Errorf("%w: %s", ErrNotFound, c.name)
		} else {
			err = fmt.Errorf("trustbundle: reading ConfigMap %s: %w", c.name, err)
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		c.uid, c.rv, c.set, c.err = "", "", nil, err
		c.metrics.loaded(nil, err)
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cm.UID == c.uid && cm.ResourceVersion == c.rv && (c.set != nil || c.err != nil) {
		return c.set, c.err
	}
	c.uid, c.rv = cm.UID, cm.ResourceVersion
	c.set, c.err = c.parse(&cm)
	c.metrics.loaded(c.set, c.err)
	return c.set, c.err
}

// TrustDomains lists the trust domains of set by name, for messages.
func TrustDomains(set *x509bundle.Set) []string {
	var out []string
	for _, b := range set.Bundles() {
		out = append(out, b.TrustDomain().Name())
	}
	slices.Sort(out)
	return out
}

func (c *ConfigMap) parse(cm *corev1.ConfigMap) (*x509bundle.Set, error) {
	set := x509bundle.NewSet()
	add := func(b *x509bundle.Bundle, key string) error {
		if set.Has(b.TrustDomain()) {
			return fmt.Errorf("%w: ConfigMap %s, key %q: a second bundle for trust domain %s", ErrInvalid, c.name, key, b.TrustDomain())
		}
		set.Add(b)
		return nil
	}
	if data := value(cm, c.key); data != "" {
		bundles, err := parseMain(c.trustDomain, []byte(data))
		if err != nil {
			return nil, fmt.Errorf("%w: ConfigMap %s, key %q: %w", ErrInvalid, c.name, c.key, err)
		}
		for _, b := range bundles {
			if err := add(b, c.key); err != nil {
				return nil, err
			}
		}
	}
	// Every key, of Data and BinaryData, in order, so that the error of a
	// broken ConfigMap is always the same.
	var keys []string
	for k := range cm.Data {
		keys = append(keys, k)
	}
	for k := range cm.BinaryData {
		if _, ok := cm.Data[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		name, ok := strings.CutPrefix(k, FederatedKeyPrefix)
		if !ok || k == c.key {
			continue
		}
		td, err := spiffeid.TrustDomainFromString(name)
		if err != nil {
			return nil, fmt.Errorf("%w: ConfigMap %s, key %q: %w", ErrInvalid, c.name, k, err)
		}
		b, err := agentcard.ParseBundle(td, []byte(value(cm, k)))
		if err != nil {
			return nil, fmt.Errorf("%w: ConfigMap %s, key %q: %w", ErrInvalid, c.name, k, err)
		}
		if err := add(b, k); err != nil {
			return nil, err
		}
	}
	if set.Len() == 0 {
		return nil, fmt.Errorf("%w: ConfigMap %s, key %q (and no %s<trust domain> key)", ErrEmpty, c.name, c.key, FederatedKeyPrefix)
	}
	return set, nil
}

// value is the text under key, from Data or else BinaryData.
func value(cm *corev1.ConfigMap, key string) string {
	if v, ok := cm.Data[key]; ok {
		return v
	}
	return string(cm.BinaryData[key])
}

// parseMain parses the main key: one bundle of td, or a bundle set.
func parseMain(td spiffeid.TrustDomain, data []byte) ([]*x509bundle.Bundle, error) {
	members, isSet := setMembers(data)
	if !isSet {
		b, err := agentcard.ParseBundle(td, data)
		if err != nil {
			return nil, err
		}
		return []*x509bundle.Bundle{b}, nil
	}
	if len(members) == 0 {
		return nil, errors.New("the bundle set names no trust domain")
	}
	names := make([]string, 0, len(members))
	for k := range members {
		names = append(names, k)
	}
	slices.Sort(names)
	out := make([]*x509bundle.Bundle, 0, len(names))
	seen := map[spiffeid.TrustDomain]bool{}
	for _, name := range names {
		td, err := spiffeid.TrustDomainFromString(name)
		if err != nil {
			return nil, fmt.Errorf("bundle set member %q: %w", name, err)
		}
		if seen[td] {
			// "example.org" and "spiffe://example.org" in one document.
			return nil, fmt.Errorf("bundle set: trust domain %s given twice", td)
		}
		seen[td] = true
		b, err := agentcard.ParseBundle(td, members[name])
		if err != nil {
			return nil, fmt.Errorf("bundle set member %q: %w", name, err)
		}
		out = append(out, b)
	}
	return out, nil
}

// setMembers reports whether data is a bundle set document: a JSON object
// without a "keys" member (which makes it a SPIFFE bundle). Anything else
// (PEM, a bundle, text that does not parse) is left to ParseBundle, whose
// errors say what is wrong with a single bundle.
func setMembers(data []byte) (map[string]json.RawMessage, bool) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, false
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &members); err != nil {
		return nil, false
	}
	if _, ok := members["keys"]; ok {
		return nil, false
	}
	return members, true
}
