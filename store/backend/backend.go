// Package backend opens the store.Backend a URL names: memory (this process
// only), redis:// or rediss:// (store/redis), postgres:// or postgresql://
// (store/postgres). It is what `agentid serve --store URL` and a policy's
// identity.nonce_storage select.
package backend

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/agentid/agentid/policy"
	"github.com/agentid/agentid/store"
	"github.com/agentid/agentid/store/memory"
	"github.com/agentid/agentid/store/postgres"
	"github.com/agentid/agentid/store/redis"
)

// Memory is the URL of the in-process store.
const Memory = "memory"

// Open connects to the store rawURL names and checks that it answers. A
// configured store that cannot be reached is an error, never a silent
// fallback to memory.
func Open(ctx context.Context, rawURL string) (store.Backend, error) {
	if rawURL == Memory || rawURL == "" {
		return memory.New(memory.Options{}), nil
	}
	scheme, _, ok := strings.Cut(rawURL, "://")
	if !ok {
		return nil, fmt.Errorf("backend: store %q: want memory, redis://, rediss://, postgres:// or postgresql://", redact(rawURL))
	}
	var b store.Backend
	var err error
	switch scheme {
	case "redis", "rediss":
		b, err = redis.Open(ctx, rawURL)
	case "postgres", "postgresql":
		b, err = postgres.Open(ctx, rawURL)
	default:
		return nil, fmt.Errorf("backend: store scheme %q: want redis, rediss, postgres or postgresql", scheme)
	}
	if err != nil {
		return nil, fmt.Errorf("backend: %s: %w", redact(rawURL), err)
	}
	return b, nil
}

// URL is the store a policy's identity.nonce_storage names: memory, or a
// redis:// URL built from address (host:port, or a redis:// URL) and
// key_prefix, or address itself for postgres (a postgres:// URL).
func URL(ns policy.NonceStorageConfig) (string, error) {
	switch ns.Type {
	case "", policy.DefaultNonceStorageType:
		return Memory, nil
	case "redis":
		if ns.Address == "" {
			return "", fmt.Errorf("backend: identity.nonce_storage.address is required for redis")
		}
		u := ns.Address
		if !strings.Contains(u, "://") {
			u = "redis://" + u
		}
		if ns.KeyPrefix != "" {
			parsed, err := url.Parse(u)
			if err != nil {
				return "", fmt.Errorf("backend: identity.nonce_storage.address: %w", err)
			}
			q := parsed.Query()
			q.Set("prefix", ns.KeyPrefix)
			parsed.RawQuery = q.Encode()
			u = parsed.String()
		}
		return u, nil
	case "postgres":
		if ns.Address == "" {
			return "", fmt.Errorf("backend: identity.nonce_storage.address is required for postgres")
		}
		return ns.Address, nil
	}
	return "", fmt.Errorf("backend: identity.nonce_storage.type %q is not one of memory, redis, postgres", ns.Type)
}

// redact is raw for messages, without its secrets: a URL's password in its
// user info or in a query parameter (pgx reads ?password=), and all but the
// scheme of a string that does not parse as a URL (a libpq DSN, a bad
// escape) since where its password is cannot be told.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		if scheme, _, ok := strings.Cut(raw, "://"); ok && err == nil {
			return scheme + "://(a URL without a host)"
		} else if ok && !strings.ContainsAny(scheme, " =@:/") {
			return scheme + "://(a URL that does not parse)"
		}
		return "(not a URL)"
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			if strings.Contains(strings.ToLower(k), "pass") {
				q.Set(k, "xxxxx")
			}
		}
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// ForPolicies opens the store override names, or else the one the
// policies' identity.nonce_storage names (they must agree), and returns it
// with its URL. Policies without identity name no store.
func ForPolicies(ctx context.Context, override string, ps ...*policy.Policy) (store.Backend, string, error) {
	u := override
	if u == "" {
		u = Memory
		for i, p := range ps {
			if p == nil || !p.IdentityConfig().Enabled {
				continue
			}
			pu, err := URL(p.IdentityConfig().NonceStorage)
			if err != nil {
				return nil, "", err
			}
			if i > 0 && pu != u && u != Memory {
				return nil, "", fmt.Errorf("backend: the policies name different stores (%s and %s); give one with --store", redact(u), redact(pu))
			}
			if pu != Memory {
				u = pu
			}
		}
	}
	b, err := Open(ctx, u)
	if err != nil {
		return nil, "", err
	}
	return b, u, nil
}
