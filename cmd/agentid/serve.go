package main

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentid/agentid/alert"
	"github.com/agentid/agentid/enforce"
	"github.com/agentid/agentid/identity"
	"github.com/agentid/agentid/policy"
	"github.com/agentid/agentid/server"
	"github.com/agentid/agentid/store/backend"
)

// storeScheme names a store for the log without its credentials.
func storeScheme(u string) string {
	scheme, _, _ := strings.Cut(u, "://")
	return scheme
}

func newServeCmd(g *globalFlags) *cobra.Command {
	var (
		policyPaths     []string
		listen          string
		storeURL        string
		adminTokenFile  string
		tokenCredFile   string
		adminIdentities []string
		auditPath       string
		auditBestEffort bool
		keyFile         string
		pubkeyPath      string
		tlsCert, tlsKey string
		clientCA        string
		requireClient   bool
		drainDelay      time.Duration
	)
	cmd := &cobra.Command{
		Use:   "serve --policy FILE... [--listen ADDR] [--store memory|redis://...|postgres://...] [--admin-token-file FILE]",
		Short: "Run the AIP validation server (POST /v1/validate, /v1/token, /v1/revoke, /v1/jwks, /health, /metrics)",
		Long: `serve answers AIP validation requests over HTTP for many agents, deciding each
with the same enforcement core as agentid proxy. Several --policy files can be
served at once, one per tenant: a token's audience selects its policy. Replicas
share nonces, revocations and rate limits through --store.

A listener that is not loopback needs TLS (--tls-cert/--tls-key or the policy's
server.tls) and requires every validation request to carry a token or a
verified client certificate. SIGHUP, or a change of a policy file, reloads the
policies; a policy that fails to load keeps the old ones (GET /health reports
degraded). SIGTERM and SIGINT drain: /health turns 503, then the listener
closes once requests in flight are answered.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			// As in the proxy: a small live heap, allocations per request,
			// and collections that would land on requests' p99. Four times
			// the live heap is still small; GOGC set by the user wins.
			if os.Getenv("GOGC") == "" {
				debug.SetGCPercent(400)
			}
			log, err := g.logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if len(policyPaths) == 0 {
				return fmt.Errorf("--policy is required")
			}
			pub, err := loadPolicyPubkey(pubkeyPath)
			if err != nil {
				return err
			}
			auditLog, err := openAuditLog(auditPath)
			if err != nil {
				return err
			}
			defer auditLog.Close()
			var policies []*enforce.Policy
			for _, path := range policyPaths {
				// The server decides on arguments meant for other hosts:
				// protected paths are checked lexically, never resolved
				// against this host's file system.
				p, err := enforce.Load(path, enforce.LoadOptions{PublicKey: pub})
				if err != nil {
					return err
				}
				for _, w := range p.Warnings {
					log.Warn("policy", "policy", path, "warning", w.String())
				}
				policies = append(policies, p)
			}
			raw := make([]*policy.Policy, len(policies))
			for i, p := range policies {
				raw[i] = p.Policy
			}
			openCtx, cancelOpen := context.WithTimeout(context.Background(), 30*time.Second)
			shared, storeName, err := backend.ForPolicies(openCtx, storeURL, raw...)
			cancelOpen()
			if err != nil {
				return err
			}
			defer shared.Close()
			cfg := server.Config{Policies: policies, Audit: auditLog, AuditBestEffort: auditBestEffort, AdminIdentities: adminIdentities, Log: log,
				OnFailOpen: alert.New(log).FailOpen,
				Nonces:     shared, Revocations: shared, RateLimits: shared, Registry: shared}
			if storeName != backend.Memory {
				cfg.Ping = shared.Ping
			} else {
				log.Warn("the store is this process's memory: run a single replica, or give every replica the same --store (redis:// or postgres://), or a token can be replayed against another replica")
			}
			if adminTokenFile != "" {
				if cfg.AdminToken, err = server.ReadAdminToken(adminTokenFile); err != nil {
					return err
				}
			}
			if tokenCredFile != "" {
				if cfg.TokenCredential, err = server.ReadAdminToken(tokenCredFile); err != nil {
					return err
				}
				if bytes.Equal(cfg.TokenCredential, cfg.AdminToken) {
					return fmt.Errorf("--token-credential-file holds the admin token: give proxies a credential of their own")
				}
			}
			for _, p := range policies {
				if p.Policy.IdentityConfig().Enabled {
					if cfg.Keys, err = identity.LoadSigningKeys(p.Policy, keyFile, identity.KeySetOptions{}); err != nil {
						return err
					}
					if storeName != backend.Memory && keyFile == "" && p.Policy.IdentityConfig().Keys.KeySource != "file" {
						log.Warn("the store is shared but the signing key is generated in this process: other replicas cannot verify its tokens; give --key or identity.keys.key_source: file")
					}
					break
				}
			}
			srv, err := server.New(cfg)
			if err != nil {
				return err
			}
			defer srv.Close()

			sc := policies[0].Server
			l := server.Listener{
				Addr:     cmp.Or(listen, sc.Listen),
				CertFile: cmp.Or(tlsCert, sc.TLS.Cert), KeyFile: cmp.Or(tlsKey, sc.TLS.Key),
				ClientCAFile: cmp.Or(clientCA, sc.TLS.ClientCA), RequireClientCert: requireClient || sc.TLS.RequireClientCert,
				DrainDelay: drainDelay,
				Ready: func(a net.Addr) {
					log.Info("serving", "listen", a.String(), "policies", len(policies), "policy_hashes", srv.PolicyHashes(), "audit", auditLog.Path(), "store", storeScheme(storeName))
				},
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			go srv.WatchPolicies(ctx, 2*time.Second)
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			go func() {
				for {
					select {
					case <-ctx.Done():
						return
					case <-hup:
						if err := srv.Reload(); err == nil {
							log.Info("policies reloaded", "policy_hashes", srv.PolicyHashes())
						}
					}
				}
			}()
			return server.Serve(ctx, srv, l)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&policyPaths, "policy", nil, "AgentPolicy file; repeat for several tenants (a token's audience selects its policy)")
	f.StringVar(&listen, "listen", "", "address to listen on (default: the first policy's server.listen, 127.0.0.1:9443)")
	f.StringVar(&storeURL, "store", "", "shared state for replicas: memory, redis://HOST:PORT/DB[?prefix=P] or postgres://USER@HOST/DB (default: the policy's identity.nonce_storage, else memory)")
	f.StringVar(&adminTokenFile, "admin-token-file", "", "file holding the admin credential for /v1/revoke and /v1/token (mode 0600, at least 16 bytes)")
	f.StringVar(&tokenCredFile, "token-credential-file", "", "file holding a credential for /v1/token only, for proxies without a client certificate (--server-credential-file), so that they need not hold the admin token (mode 0600, at least 16 bytes)")
	f.StringArrayVar(&adminIdentities, "admin-identity", nil, "client-certificate identity (URI SAN such as a SPIFFE ID, or subject CN) that acts as admin; repeatable")
	f.StringVar(&auditPath, "audit", "", "audit log file (default $XDG_STATE_HOME/agentid/audit.jsonl)")
	f.BoolVar(&auditBestEffort, "audit-best-effort", false, "answer requests whose audit records cannot be written (default: 500)")
	f.StringVar(&keyFile, "key", "", "token signing key (PEM); replicas must share it (default: the policy's identity.keys)")
	f.StringVar(&pubkeyPath, "policy-pubkey", "", "Ed25519 public key (PEM): every policy must carry a valid signature from it, at start and on every reload")
	f.StringVar(&tlsCert, "tls-cert", "", "TLS certificate chain (PEM; default: the policy's server.tls.cert); reloaded when it changes")
	f.StringVar(&tlsKey, "tls-key", "", "TLS private key (PEM; default: the policy's server.tls.key)")
	f.StringVar(&clientCA, "client-ca", "", "CA certificates (PEM) that verify client certificates (mTLS)")
	f.BoolVar(&requireClient, "require-client-cert", false, "refuse TLS connections without a verified client certificate")
	f.DurationVar(&drainDelay, "drain-delay", 5*time.Second, "on SIGTERM, how long /health reports 503 before the listener closes")
	return cmd
}
