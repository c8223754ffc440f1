package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentid/agentid/alert"
	"github.com/agentid/agentid/approve"
	"github.com/agentid/agentid/audit"
	"github.com/agentid/agentid/enforce"
	"github.com/agentid/agentid/identity"
	"github.com/agentid/agentid/jsonrpc"
	"github.com/agentid/agentid/policy"
	"github.com/agentid/agentid/proxy"
	"github.com/agentid/agentid/store"
	"github.com/agentid/agentid/store/backend"
)

func newProxyCmd(g *globalFlags) *cobra.Command {
	var (
		policyPath      string
		auditPath       string
		target          string
		webhook         string
		approvalTimeout time.Duration
		showBlocked     bool
		maxLine         int
		pubkeyPath      string
		revocationFile  string
		auditBestEffort bool
		remote          remoteFlags
	)
	cmd := &cobra.Command{
		Use:   "proxy --policy FILE [--audit FILE] -- COMMAND [ARGS...]",
		Short: "Enforce a policy between an MCP client (stdio) and an MCP server",
		Long: `proxy spawns the MCP server COMMAND and relays newline-delimited JSON-RPC
between it and this process's stdin/stdout, enforcing the AgentPolicy on every
message. Denied calls are answered with AIP error codes; every decision is
written to the audit log (JSON Lines, mode 0600). Logs go to stderr.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			// The proxy's live heap is small and it allocates per message:
			// with the default GOGC it collects every few hundred calls, and
			// the collector's work lands on the latency of calls (p99). Four
			// times the live heap is still a few MiB; GOGC set by the user wins.
			if os.Getenv("GOGC") == "" {
				debug.SetGCPercent(400)
			}
			log, err := g.logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			argv := args
			if target != "" {
				if len(args) > 0 {
					return fmt.Errorf("give the server either after -- or with --target, not both")
				}
				if argv, err = splitCommand(target); err != nil {
					return fmt.Errorf("--target: %w", err)
				}
			}
			if len(argv) == 0 {
				return fmt.Errorf("no MCP server command: use agentid proxy --policy FILE -- COMMAND [ARGS...]")
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
			protected := []string{auditLog.Path()}
			if revocationFile != "" {
				protected = append(protected, revocationFile)
			}
			loaded, err := enforce.Load(policyPath, enforce.LoadOptions{PublicKey: pub, ExtraProtected: protected, Paths: policy.HostPaths()})
			if err != nil {
				return err
			}
			for _, w := range loaded.Warnings {
				log.Warn("policy", "warning", w.String())
			}
			// A policy whose identity.nonce_storage is shared (redis,
			// postgres) keeps nonces, revocations and rate limits there, so
			// that several proxies share them.
			openCtx, cancelOpen := context.WithTimeout(context.Background(), 30*time.Second)
			shared, storeName, err := backend.ForPolicies(openCtx, "", loaded.Policy)
			cancelOpen()
			if err != nil {
				return err
			}
			defer shared.Close()
			var ic identity.Config
			var limits store.RateLimiter
			if storeName != backend.Memory {
				ic.Nonces, ic.Revocations, limits = shared, shared, shared
			}
			validator, err := remote.client(loaded)
			if err != nil {
				return err
			}
			if validator != nil {
				defer validator.Close()
			}
			core, err := enforce.New(enforce.Config{
				Policy: loaded, ApprovalTimeout: approvalTimeout, ShowBlockedTools: showBlocked, Log: log, Remote: remoteOf(validator), Identity: ic, RateLimits: limits,
				OnFailOpen: alert.New(log).FailOpen,
				Events: func(r audit.Record) {
					if err := auditLog.Log(r); err != nil {
						log.Error("audit log write failed", "error", err)
					}
				},
			})
			if err != nil {
				return err
			}
			defer core.Close()
			ident := core.Identity()
			approver := approve.Default()
			if webhook != "" {
				approver = approve.Webhook(webhook, approve.WebhookOptions{Timeout: approvalTimeout})
			}
			px := proxy.New(proxy.Config{Core: core, Approver: approver, Audit: auditLog, AuditBestEffort: auditBestEffort, Log: log, MaxLineSize: maxLine})
			var serverStderr io.Writer = os.Stderr
			if d := loaded.Policy.Spec.DLP; d.IsEnabled() && d.FilterStderr != nil && *d.FilterStderr {
				filter := proxy.StderrFilter(os.Stderr, loaded.DLP)
				defer filter.Close()
				serverStderr = filter
			}

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if revocationFile != "" {
				go core.WatchRevocationFile(ctx, revocationFile, 2*time.Second, func(err error) { log.Error("revocation file", "error", err) })
			}
			// SIGHUP reloads the policy; SIGUSR1 ends the identity session
			// (spec §5.6.4); SIGINT and SIGTERM go to the MCP server.
			control := make(chan os.Signal, 2)
			signal.Notify(control, syscall.SIGHUP, syscall.SIGUSR1)
			defer signal.Stop(control)
			go func() {
				for {
					select {
					case <-ctx.Done():
						return
					case s := <-control:
						if s == syscall.SIGUSR1 {
							endSession(ctx, core, log)
							continue
						}
						reloadPolicy(core, log)
					}
				}
			}()
			sig := make(chan os.Signal, 2)
			signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
			defer signal.Stop(sig)
			log.Info("proxy started", "policy", loaded.Policy.Path, "policy_hash", loaded.Hash, "mode", loaded.Policy.Mode(),
				"identity", ident != nil, "audit", auditLog.Path(), "server", argv[0])
			code, err := px.Run(ctx, proxy.Command{Path: argv[0], Args: argv[1:], Stderr: serverStderr},
				os.Stdin, os.Stdout, sig)
			if err != nil {
				log.Error("proxy stopped", "error", err)
				if code == 0 {
					code = 1
				}
			}
			if code != 0 {
				return exitError{code}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&policyPath, "policy", "agent.yaml", "AgentPolicy file")
	f.StringVar(&auditPath, "audit", "", "audit log file (default $XDG_STATE_HOME/agentid/audit.jsonl)")
	f.StringVar(&target, "target", "", `MCP server command as one string (compatibility with the reference CLI)`)
	f.StringVar(&webhook, "approval-webhook", "", "URL to POST approval requests to (action: ask); default: prompt on the terminal, or deny when headless")
	f.DurationVar(&approvalTimeout, "approval-timeout", 60*time.Second, "how long to wait for an approval before answering -32005")
	f.BoolVar(&showBlocked, "show-blocked-tools", false, "do not hide tools the policy blocks from tools/list responses")
	f.IntVar(&maxLine, "max-line-size", jsonrpc.DefaultMaxLineSize, "largest accepted JSON-RPC message in bytes")
	f.StringVar(&pubkeyPath, "policy-pubkey", "", "Ed25519 public key (PEM): the policy must carry a valid signature from it, at start and on every reload")
	f.StringVar(&revocationFile, "revocation-file", "", `JSON file {"revoked_sessions":[...],"revoked_tokens":[...]} polled for revocations (identity)`)
	f.BoolVar(&auditBestEffort, "audit-best-effort", false, "keep relaying when the audit log cannot be written (default: such a call is refused with -32603)")
	remote.register(f)
	return cmd
}

// reloadPolicy loads the policy file again (SIGHUP). A refused policy is
// not applied, and tool calls are answered with -32010 until a good one
// loads (enforce.Core.Reload).
func reloadPolicy(core *enforce.Core, log *slog.Logger) {
	loaded, err := core.Reload()
	if err != nil {
		log.Error("policy reload refused; tool calls are denied until a valid policy loads", "error", err)
		return
	}
	log.Info("policy reloaded", "policy_hash", loaded.Hash, "mode", loaded.Mode())
}

// endSession revokes the identity session and starts a new one (SIGUSR1).
func endSession(ctx context.Context, core *enforce.Core, log *slog.Logger) {
	if core.Identity() == nil {
		log.Warn("SIGUSR1 ignored: identity is not enabled")
		return
	}
	old, next, err := core.EndSession(ctx)
	if err != nil {
		log.Error("ending the session failed", "error", err)
		return
	}
	log.Info("session ended", "session_id", old, "new_session_id", next)
}
