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

// ConfigMap is the trust bundle of one trust domain, read from a key of a
// ConfigMap. It is safe for concurrent use.
type ConfigMap struct {
	reader      client.Reader
	name        types.NamespacedName
	key         string
	trustDomain spiffeid.TrustDomain

	mu     sync.Mutex
	uid    types.UID
	rv     string
	bundle *x509bundle.Bundle
	err    error
}

// NewConfigMap returns the bundle of trust domain td held under key (""
// means DefaultKey) in ConfigMap name, read with reader.
func NewConfigMap(reader client.Reader, name types.NamespacedName, key string, td spiffeid.TrustDomain) (*ConfigMap, error) {
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
	return &ConfigMap{reader: reader, name: name, key: key, trustDomain: td}, nil
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
			return nil, fmt.Errorf("trustbundle: ConfigMap %s not found", c.name)
		}
		return nil, fmt.Errorf("trustbundle: reading ConfigMap %s: %w", c.name, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cm.UID == c.uid && cm.ResourceVersion == c.rv && (c.bundle != nil || c.err != nil) {
		return c.bundle, c.err
	}
	c.uid, c.rv = cm.UID, cm.ResourceVersion
	c.bundle, c.err = c.parse(&cm)
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
		return nil, fmt.Errorf("trustbundle: ConfigMap %s: key %q not found or empty", c.name, c.key)
	}
	b, err := agentcard.ParseBundle(c.trustDomain, []byte(data))
	if err != nil {
		return nil, fmt.Errorf("trustbundle: ConfigMap %s key %q: %w", c.name, c.key, err)
	}
	return b, nil
}
