package main

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/agentid/agentid/alert"
	"github.com/agentid/agentid/audit"
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

// serverFlags are the flags `agentid serve` and `agentid gateway` share:
// the policies, the shared store, the credentials, the audit log, the keys
// and the listener.
type serverFlags struct {
	policyPaths     []string
	listen          string
	storeURL        string
	adminTokenFile  string
	tokenCredFile   string
	adminIdentities []string
	tokenClients    []string
	auditPath       string
	auditBestEffort bool
	keyFile         string
	pubkeyPath      string
	tlsCert, tlsKey string
	clientCA        string
	requireClient   bool
	drainDelay      time.Duration
}

func (sf *serverFlags) register(f *pflag.FlagSet) {
	f.StringVar(&sf.listen, "listen", "", "address to listen on (default: the policy's server.listen, 127.0.0.1:9443)")
	f.StringVar(&sf.storeURL, "store", "", "shared state for replicas: memory, redis://HOST:PORT/DB[?prefix=P] or postgres://USER@HOST/DB (default: the policy's identity.nonce_storage, else memory)")
	f.StringVar(&sf.adminTokenFile, "admin-token-file", "", "file holding the admin credential for /v1/revoke and /v1/token (mode 0600, at least 16 bytes)")
	f.StringVar(&sf.tokenCredFile, "token-credential-file", "", "file holding a credential for /v1/token only, for agents and proxies without a client certificate, so that they need not hold the admin token (mode 0600, at least 16 bytes)")
	f.StringArrayVar(&sf.adminIdentities, "admin-identity", nil, "client-certificate identity (URI SAN such as a SPIFFE ID, or subject CN) that acts as admin; repeatable")
	f.StringArrayVar(&sf.tokenClients, "token-client", nil, "POLICY=IDENTITY: a client-certificate identity (SPIFFE ID or common name) that may obtain tokens for the policy named POLICY (metadata.name) and, through the gateway, call under it; repeatable. With several policies, a certificate obtains tokens only for the policies that name it; once a policy names one, the gateway refuses every other client")
	f.StringVar(&sf.auditPath, "audit", "", "audit log file (default $XDG_STATE_HOME/agentid/audit.jsonl)")
	f.BoolVar(&sf.auditBestEffort, "audit-best-effort", false, "carry out decisions whose audit records cannot be written (default: refuse them)")
	f.StringVar(&sf.keyFile, "key", "", "token signing key (PEM); replicas must share it (default: the policy's identity.keys)")
	f.StringVar(&sf.pubkeyPath, "policy-pubkey", "", "Ed25519 public key (PEM): every policy must carry a valid signature from it, at start and on every reload")
	f.StringVar(&sf.tlsCert, "tls-cert", "", "TLS certificate chain (PEM; default: the policy's server.tls.cert); reloaded when it changes")
	f.StringVar(&sf.tlsKey, "tls-key", "", "TLS private key (PEM; default: the policy's server.tls.key)")
	f.StringVar(&sf.clientCA, "client-ca", "", "CA certificates (PEM) that verify client certificates (mTLS)")
	f.BoolVar(&sf.requireClient, "require-client-cert", false, "refuse TLS connections without a verified client certificate")
	f.DurationVar(&sf.drainDelay, "drain-delay", 5*time.Second, "on SIGTERM, how long /health reports 503 before the listener closes")
}

// running is a server built from serverFlags, with what closes it.
type running struct {
	srv      *server.Server
	audit    *audit.Logger
	listener server.Listener
	closers  []func() error
}

func (r *running) Close() {
	for i := len(r.closers) - 1; i >= 0; i-- {
		r.closers[i]()
	}
}

// build loads the policies, opens the store and the audit log and returns
// the server with its listener.
func (sf *serverFlags) build(log *slog.Logger) (*running, error) {
	// A small live heap, allocations per request, and collections that
	// would land on requests' p99: four times the live heap is still
	// small. GOGC set by the user wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if len(sf.policyPaths) == 0 {
		return nil, fmt.Errorf("--policy is required")
	}
	pub, err := loadPolicyPubkey(sf.pubkeyPath)
	if err != nil {
		return nil, err
	}
	r := &running{}
	ok := false
	defer func() {
		if !ok {
			r.Close()
		}
	}()
	auditLog, err := openAuditLog(sf.auditPath)
	if err != nil {
		return nil, err
	}
	r.closers = append(r.closers, auditLog.Close)
	r.audit = auditLog
	var policies []*enforce.Policy
	for _, path := range sf.policyPaths {
		// The server decides on arguments meant for other hosts: protected
		// paths are checked lexically, never resolved against this host's
		// file system.
		p, err := enforce.Load(path, enforce.LoadOptions{PublicKey: pub})
		if err != nil {
			return nil, err
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
	shared, storeName, err := backend.ForPolicies(openCtx, sf.storeURL, raw...)
	cancelOpen()
	if err != nil {
		return nil, err
	}
	r.closers = append(r.closers, shared.Close)
	cfg := server.Config{Policies: policies, Audit: auditLog, AuditBestEffort: sf.auditBestEffort, AdminIdentities: sf.adminIdentities, Log: log,
		OnFailOpen: alert.New(log).FailOpen,
		Nonces:     shared, Revocations: shared, RateLimits: shared, Registry: shared}
	if storeName != backend.Memory {
		cfg.Ping = shared.Ping
	} else {
		log.Warn("the store is this process's memory: run a single replica, or give every replica the same --store (redis:// or postgres://), or a token can be replayed against another replica")
	}
	for _, tc := range sf.tokenClients {
		name, id, ok := strings.Cut(tc, "=")
		if !ok || name == "" || id == "" {
			return nil, fmt.Errorf("--token-client %q: want POLICY=IDENTITY", tc)
		}
		if cfg.TokenClients == nil {
			cfg.TokenClients = make(map[string][]string)
		}
		cfg.TokenClients[name] = append(cfg.TokenClients[name], id)
	}
	if sf.adminTokenFile != "" {
		if cfg.AdminToken, err = server.ReadAdminToken(sf.adminTokenFile); err != nil {
			return nil, err
		}
	}
	if sf.tokenCredFile != "" {
		if cfg.TokenCredential, err = server.ReadAdminToken(sf.tokenCredFile); err != nil {
			return nil, err
		}
		if bytes.Equal(cfg.TokenCredential, cfg.AdminToken) {
			return nil, fmt.Errorf("--token-credential-file holds the admin token: give agents a credential of their own")
		}
	}
	for _, p := range policies {
		if p.Policy.IdentityConfig().Enabled {
			if cfg.Keys, err = identity.LoadSigningKeys(p.Policy, sf.keyFile, identity.KeySetOptions{}); err != nil {
				return nil, err
			}
			if storeName != backend.Memory && sf.keyFile == "" && p.Policy.IdentityConfig().Keys.KeySource != "file" {
				log.Warn("the store is shared but the signing key is generated in this process: other replicas cannot verify its tokens; give --key or identity.keys.key_source: file")
			}
			break
		}
	}
	srv, err := server.New(cfg)
	if err != nil {
		return nil, err
	}
	r.srv = srv
	r.closers = append(r.closers, srv.Close)
	sc := policies[0].Server
	r.listener = server.Listener{
		Addr:     cmp.Or(sf.listen, sc.Listen),
		CertFile: cmp.Or(sf.tlsCert, sc.TLS.Cert), KeyFile: cmp.Or(sf.tlsKey, sc.TLS.Key),
		ClientCAFile: cmp.Or(sf.clientCA, sc.TLS.ClientCA), RequireClientCert: sf.requireClient || sc.TLS.RequireClientCert,
		DrainDelay: sf.drainDelay,
		Ready: func(a net.Addr) {
			log.Info("serving", "listen", a.String(), "policies", len(policies), "policy_hashes", srv.PolicyHashes(), "audit", auditLog.Path(), "store", storeScheme(storeName))
		},
	}
	ok = true
	return r, nil
}

// serveUntilSignal serves r until SIGINT or SIGTERM, reloading its
// policies on SIGHUP or when a file changes.
func (r *running) serveUntilSignal(log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	srv := r.srv
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
	return server.Serve(ctx, srv, r.listener)
}

func newServeCmd(g *globalFlags) *cobra.Command {
	var sf serverFlags
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
			log, err := g.logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			r, err := sf.build(log)
			if err != nil {
				return err
			}
			defer r.Close()
			return r.serveUntilSignal(log)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&sf.policyPaths, "policy", nil, "AgentPolicy file; repeat for several tenants (a token's audience selects its policy)")
	sf.register(f)
	return cmd
}
