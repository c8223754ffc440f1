package trustbundle

import (
	"context"
	"errors"
	"fmt"
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

// ConfigMap is the trust bundle of one trust domain, read from a key of a
// ConfigMap. It is safe for concurrent use.
type ConfigMap struct {
	reader      client.Reader
	name        types.NamespacedName
	key         string
	trustDomain spiffeid.TrustDomain

	metrics *Metrics

	mu     sync.Mutex
	uid    types.UID
	rv     string
	bundle *x509bundle.Bundle
	err    error
}

// Option configures a ConfigMap.
type Option func(*ConfigMap)

// WithMetrics records bundle loads in m.
func WithMetrics(m *Metrics) Option { return func(c *ConfigMap) { c.metrics = m } }

// NewConfigMap returns the bundle of trust domain td held under key (""
// means DefaultKey) in ConfigMap name, read with reader.
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

// TrustDomain returns the trust domain whose bundle the ConfigMap holds.
func (c *ConfigMap) TrustDomain() spiffeid.TrustDomain { return c.trustDomain }

// Bundle returns the current bundle. The error says which of the
// ConfigMap, its key or its content is wrong.
func (c *ConfigMap) Bundle(ctx context.Context) (*x509bundle.Bundle, error) {
	var cm corev1.ConfigMap
	if err := c.reader.Get(ctx, c.name, &cm); err != nil {
		if apierrors.IsNotFound(err) {
			err = fmt.Errorf("%w: %s", ErrNotFound, c.name)
		} else {
			err = fmt.Errorf("trustbundle: reading ConfigMap %s: %w", c.name, err)
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		c.uid, c.rv, c.bundle, c.err = "", "", nil, err
		c.metrics.loaded(nil, err)
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cm.UID == c.uid && cm.ResourceVersion == c.rv && (c.bundle != nil || c.err != nil) {
		return c.bundle, c.err
	}
	c.uid, c.rv = cm.UID, cm.ResourceVersion
	c.bundle, c.err = c.parse(&cm)
	c.metrics.loaded(c.bundle, c.err)
	return c.bundle, c.err
}

func (c *ConfigMap) parse(cm *corev1.ConfigMap) (*x509bundle.Bundle, error) {
	data, ok := cm.Data[c.key]
	if !ok {
		if b, ok := cm.BinaryData[c.key]; ok {
			data = string(b)
		}
	}
	if data == "" {
		return nil, fmt.Errorf("%w: ConfigMap %s, key %q", ErrEmpty, c.name, c.key)
	}
	b, err := agentcard.ParseBundle(c.trustDomain, []byte(data))
	if err != nil {
		return nil, fmt.Errorf("%w: ConfigMap %s, key %q: %w", ErrInvalid, c.name, c.key, err)
	}
	return b, nil
}
