package backend_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/testenv"
	"github.com/agentid/agentid/policy"
	"github.com/agentid/agentid/store/backend"
)

func TestURLFollowsNonceStorage(t *testing.T) {
	for _, tc := range []struct {
		ns   policy.NonceStorageConfig
		want string
		err  bool
	}{
		{policy.NonceStorageConfig{Type: "memory"}, "memory", false},
		{policy.NonceStorageConfig{}, "memory", false},
		{policy.NonceStorageConfig{Type: "redis", Address: "10.0.0.5:6379"}, "redis://10.0.0.5:6379", false},
		{policy.NonceStorageConfig{Type: "redis", Address: "10.0.0.5:6379", KeyPrefix: "team-a:"}, "redis://10.0.0.5:6379?prefix=team-a%3A", false},
		{policy.NonceStorageConfig{Type: "redis", Address: "rediss://cache:6380/2"}, "rediss://cache:6380/2", false},
		{policy.NonceStorageConfig{Type: "postgres", Address: "postgres://agentid@db/agentid"}, "postgres://agentid@db/agentid", false},
		{policy.NonceStorageConfig{Type: "redis"}, "", true},
		{policy.NonceStorageConfig{Type: "postgres"}, "", true},
		{policy.NonceStorageConfig{Type: "etcd", Address: "x"}, "", true},
	} {
		got, err := backend.URL(tc.ns)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("URL(%+v) = %q, %v; want %q (error %v)", tc.ns, got, err, tc.want, tc.err)
		}
	}
}

func TestOpenRefusesWhatItCannotReach(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, u := range []string{"etcd://x", "localhost:6379", "redis://user:hunter2@127.0.0.1:1/0"} {
		b, err := backend.Open(ctx, u)
		if err == nil {
			b.Close()
			t.Errorf("Open(%q) succeeded", u)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Open(%q): the error shows the password: %v", u, err)
		}
	}
}

func TestOpenEachKind(t *testing.T) {
	ctx := context.Background()
	urls := map[string]string{"memory": "memory", "redis": testenv.Redis(t).URL, "postgres": testenv.Postgres(t).URL}
	for name, u := range urls {
		t.Run(name, func(t *testing.T) {
			b, err := backend.Open(ctx, u)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if err := b.Ping(ctx); err != nil {
				t.Fatal(err)
			}
			nonce := "backend-open-" + name + "-" + time.Now().Format("150405.000000000")
			fresh, err := b.CheckAndRecord(ctx, nonce, time.Minute)
			if err != nil || !fresh {
				t.Fatalf("first check: %v %v", fresh, err)
			}
			if again, err := b.CheckAndRecord(ctx, nonce, time.Minute); err != nil || again {
				t.Fatalf("second check: %v %v", again, err)
			}
		})
	}
}

func TestNoErrorShowsAStorePasswordWhereverTheURLHoldsIt(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, u := range []string{
		"redis://:hunter2@127.0.0.1:1/0",
		"postgres://agentid@127.0.0.1:1/agentid?password=hunter2&sslmode=disable",
		"postgres://agentid:hunter2@127.0.0.1:1/agentid%zz",   // does not parse as a URL
		"redis://agentid:hun%zzter2@127.0.0.1:1/0",            // nor does this
		"host=127.0.0.1 port=1 user=agentid password=hunter2", // a libpq DSN, not a URL
	} {
		b, err := backend.Open(ctx, u)
		if err == nil {
			b.Close()
			t.Errorf("Open(%q) succeeded", u)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "hun%zzter2") {
			t.Errorf("Open(%q): the error shows the password: %v", u, err)
		}
	}
	for _, tc := range [][2]string{
		{"redis://:hunter2@127.0.0.1:1/0", "postgres://u:hunter2@127.0.0.1:1/db"},
		{"redis://127.0.0.1:1/0", "postgres://u@127.0.0.1:1/db?password=hunter2"},
	} {
		_, _, err := backend.ForPolicies(ctx, "", storePolicy(t, "redis", tc[0]), storePolicy(t, "postgres", tc[1]))
		if err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("two stores %q and %q: %v", tc[0], tc[1], err)
		}
	}
}

// storePolicy is a policy whose identity.nonce_storage is typ at address.
func storePolicy(t *testing.T, typ, address string) *policy.Policy {
	t.Helper()
	p, _, err := policy.Parse([]byte(`apiVersion: aip.io/v1alpha2
kind: AgentPolicy
metadata: {name: stores}
spec:
  allowed_tools: [read_file]
  identity:
    enabled: true
    audience: stores
    nonce_storage: {type: ` + typ + `, address: "` + address + `"}
`))
	if err != nil {
		t.Fatal(err)
	}
	return p
}
