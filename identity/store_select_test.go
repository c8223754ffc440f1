package identity_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/agentid/agentid/identity"
	"github.com/agentid/agentid/store/memory"
)

// TestNewManagerRefusesAConfiguredStoreItDoesNotHave: a policy that asks
// for a shared nonce store (redis, postgres) does not silently run on the
// in-memory one, where two instances meant to share the store would each
// accept the same token once.
func TestNewManagerRefusesAConfiguredStoreItDoesNotHave(t *testing.T) {
	for _, typ := range []string{"redis", "postgres"} {
		t.Run(typ, func(t *testing.T) {
			p := writePolicy(t, t.TempDir(), "agent", "nonce_storage:\n  type: "+typ+"\n  address: "+typ+"://127.0.0.1:1")
			m, err := identity.NewManager(identity.Config{Policy: p})
			if err == nil {
				m.Close()
				t.Fatal("NewManager started on the in-memory store")
			}
			if !errors.Is(err, identity.ErrStoreUnavailable) || !strings.Contains(err.Error(), `"`+typ+`"`) {
				t.Fatalf("got %v, want ErrStoreUnavailable naming %q", err, typ)
			}
		})
	}
}

// TestNewManagerRunsOnMemoryStorage: the default and an explicit memory
// type start; a store the caller passes in is used whatever the policy says.
func TestNewManagerRunsOnMemoryStorage(t *testing.T) {
	for name, block := range map[string]string{
		"default":         "token_ttl: 5m",
		"explicit memory": "nonce_storage:\n  type: memory",
	} {
		t.Run(name, func(t *testing.T) {
			p := writePolicy(t, t.TempDir(), "agent", block)
			m, err := identity.NewManager(identity.Config{Policy: p})
			if err != nil {
				t.Fatal(err)
			}
			m.Close()
		})
	}
	t.Run("caller's store", func(t *testing.T) {
		p := writePolicy(t, t.TempDir(), "agent", "nonce_storage:\n  type: redis\n  address: redis://127.0.0.1:1")
		ns := memory.NewNonceStore(memory.Options{})
		defer ns.Close()
		m, err := identity.NewManager(identity.Config{Policy: p, Nonces: ns})
		if err != nil {
			t.Fatal(err)
		}
		m.Close()
	})
}

// TestUpdatePolicyRefusesAConfiguredStoreItDoesNotHave: a reload that asks
// for a shared store is refused like a start with it, not run on memory.
func TestUpdatePolicyRefusesAConfiguredStoreItDoesNotHave(t *testing.T) {
	dir := t.TempDir()
	m, err := identity.NewManager(identity.Config{Policy: writePolicy(t, dir, "agent", "token_ttl: 5m")})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	p := writePolicy(t, dir, "agent", "nonce_storage:\n  type: redis\n  address: redis://127.0.0.1:1")
	h, err := p.Hash()
	if err != nil {
		t.Fatal(err)
	}
	if err := m.UpdatePolicy(p, h); !errors.Is(err, identity.ErrStoreUnavailable) {
		t.Fatalf("UpdatePolicy to a redis store: %v, want ErrStoreUnavailable", err)
	}
}
