package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/agentid/agentid/internal/testenv"
)

const replicaPolicy = `apiVersion: aip.io/v1alpha2
kind: AgentPolicy
metadata: {name: NAME}
spec:
  allowed_tools: [read_file, limited]
  tool_rules:
    - tool: limited
      rate_limit: "5/minute"
  identity:
    enabled: true
    require_token: true
    keys:
      key_source: file
      key_path: KEY
`

// fleet is three `agentid serve` replicas on one store, sharing a signing
// key and an admin token, as a deployment behind a load balancer would.
type fleet struct {
	replicas []*serveProcess
	admin    string
	client   *http.Client
}

func startFleet(t *testing.T, storeURL string) *fleet {
	t.Helper()
	dir := t.TempDir()
	key := filepath.Join(dir, "key.pem")
	if out, code := run(t, "keys", "generate", "--alg", "ES256", "--out", key); code != 0 {
		t.Fatalf("keys generate: %s", out)
	}
	name := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	policyPath := writeFile(t, "fleet.yaml", strings.NewReplacer("NAME", name, "KEY", key).Replace(replicaPolicy))
	admin := "fleet-admin-token-0123456789"
	adminFile := filepath.Join(dir, "admin")
	os.WriteFile(adminFile, []byte(admin), 0o600)
	f := &fleet{admin: admin, client: &http.Client{Transport: &http.Transport{MaxConnsPerHost: 32, MaxIdleConnsPerHost: 32}}}
	for i := 0; i < 3; i++ {
		f.replicas = append(f.replicas, startServe(t, "--policy", policyPath, "--store", storeURL, "--admin-token-file", adminFile))
	}
	return f
}

func (f *fleet) post(t *testing.T, replica int, path, body, bearer string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", f.replicas[replica%len(f.replicas)].url+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		t.Error(err)
		return 0, nil
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	json.Unmarshal(raw, &m)
	return resp.StatusCode, m
}

func (f *fleet) token(t *testing.T, replica int, session string) (tok, sessionID string) {
	t.Helper()
	body := `{"binding":{"process_id":7,"hostname":"agent","policy_path":"/agent.yaml"}` + map[bool]string{true: `,"session_id":"` + session + `"`, false: ""}[session != ""] + `}`
	status, m := f.post(t, replica, "/v1/token", body, f.admin)
	tok, _ = m["token"].(string)
	if status != 200 || tok == "" {
		t.Fatalf("token from replica %d: %d %v", replica, status, m)
	}
	s, _ := m["session_id"].(string)
	return tok, s
}

// validate sends a call to a replica and returns the HTTP status and body.
func (f *fleet) validate(t *testing.T, replica int, tool, tok string) (int, map[string]any) {
	return f.post(t, replica, "/v1/validate", `{"tool":"`+tool+`","arguments":{}}`, tok)
}

func storeURLs(t *testing.T) map[string]string {
	return map[string]string{
		"redis":    testenv.Redis(t).URL + "?prefix=" + fmt.Sprintf("fleet%d:", os.Getpid()),
		"postgres": testenv.Postgres(t).URL,
	}
}

func TestReplicasOnOneStoreAcceptATokenOnceAndShareRateLimits(t *testing.T) {
	for kind, url := range storeURLs(t) {
		t.Run(kind, func(t *testing.T) {
			f := startFleet(t, url)

			// One token sent 1,000 times at once, spread over the replicas.
			tok, session := f.token(t, 0, "")
			var accepted, replays atomic.Int64
			var wg sync.WaitGroup
			for i := 0; i < 1000; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					status, m := f.validate(t, i, "read_file", tok)
					switch {
					case status == 200 && m["decision"] == "allow":
						accepted.Add(1)
					case status == 401 && m["token_error"] == "replay_detected":
						replays.Add(1)
					default:
						t.Errorf("replica %d: %d %v", i%3, status, m)
					}
				}()
			}
			wg.Wait()
			if accepted.Load() != 1 || replays.Load() != 999 {
				t.Fatalf("one token 1,000 times over 3 replicas: %d accepted, %d replays; want 1 and 999", accepted.Load(), replays.Load())
			}

			// 5/minute is five calls for the whole fleet.
			toks := make([]string, 20)
			for i := range toks {
				toks[i], _ = f.token(t, i, session)
			}
			var allowed, limited atomic.Int64
			for i, tk := range toks {
				wg.Add(1)
				go func() {
					defer wg.Done()
					status, m := f.validate(t, i, "limited", tk)
					switch {
					case status == 200 && m["decision"] == "allow":
						allowed.Add(1)
					case status == 429 && m["error"] == "rate_limited":
						limited.Add(1)
					default:
						t.Errorf("replica %d: %d %v", i%3, status, m)
					}
				}()
			}
			wg.Wait()
			if allowed.Load() != 5 || limited.Load() != 15 {
				t.Fatalf("5/minute over 3 replicas, 20 calls: %d allowed, %d limited; want 5 and 15", allowed.Load(), limited.Load())
			}

			// A revocation on one replica holds on the others.
			later, _ := f.token(t, 2, session)
			if status, m := f.post(t, 1, "/v1/revoke", `{"type":"session","session_id":"`+session+`"}`, f.admin); status != 200 {
				t.Fatalf("revoke: %d %v", status, m)
			}
			if status, m := f.validate(t, 2, "read_file", later); status != 401 || m["token_error"] != "session_revoked" {
				t.Fatalf("a revoked session's token on another replica: %d %v", status, m)
			}
			if status, m := f.post(t, 0, "/v1/revoke", `{"type":"session","session_id":"00000000-0000-4000-8000-000000000000"}`, f.admin); status != 404 {
				t.Fatalf("revoking a session never issued: %d %v", status, m)
			}
		})
	}
}

func TestReplicasFailClosedWhileTheStoreIsDownAndRecoverWithoutARestart(t *testing.T) {
	for _, kind := range []string{"redis", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			var srv *testenv.Server
			if kind == "redis" {
				srv = testenv.NewRedis(t)
			} else {
				srv = testenv.NewPostgres(t)
			}
			f := startFleet(t, srv.URL)
			_, session := f.token(t, 0, "")
			revoked, _ := f.token(t, 0, session)
			if status, m := f.post(t, 0, "/v1/revoke", `{"type":"session","session_id":"`+session+`"}`, f.admin); status != 200 {
				t.Fatalf("revoke: %d %v", status, m)
			}
			fresh, _ := f.token(t, 1, "")
			replayed, _ := f.token(t, 1, "")
			if status, _ := f.validate(t, 1, "read_file", replayed); status != 200 {
				t.Fatalf("first use: %d", status)
			}

			if err := srv.Stop(); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 3; i++ {
				status, m := f.validate(t, i, "read_file", fresh)
				if status != 503 || m["error"] != "validation_unavailable" {
					t.Fatalf("replica %d with the store down: %d %v, want 503 validation_unavailable", i, status, m)
				}
				if status, h := f.replicas[i].health(t); status != 503 || h["store"] != "unavailable" {
					t.Fatalf("replica %d health with the store down: %d %v", i, status, h)
				}
			}
			if status, _ := f.validate(t, 2, "read_file", replayed); status == 200 {
				t.Fatal("a replay was accepted while the store was down")
			}

			if err := srv.Start(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, func() bool { status, _ := f.replicas[0].health(t); return status == 200 })
			if status, m := f.validate(t, 0, "read_file", fresh); status != 200 || m["decision"] != "allow" {
				t.Fatalf("after the store returned: %d %v", status, m)
			}
			if kind == "redis" {
				// The tests' Redis keeps nothing on disk (--save "",
				// --appendonly no): its restart forgets every nonce and
				// revocation, as docs/decisions.md warns. PostgreSQL's
				// logged tables keep them.
				return
			}
			if status, m := f.validate(t, 2, "read_file", replayed); status != 401 || m["token_error"] != "replay_detected" {
				t.Fatalf("a token used before the outage, replayed after it: %d %v", status, m)
			}
			if status, m := f.validate(t, 1, "read_file", revoked); status != 401 || m["token_error"] != "session_revoked" {
				t.Fatalf("a revocation made before the store restarted, after it: %d %v", status, m)
			}
		})
	}
}
