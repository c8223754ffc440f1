package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentid/agentid/approve"
	"github.com/agentid/agentid/audit"
	"github.com/agentid/agentid/dlp"
	"github.com/agentid/agentid/jsonrpc"
	"github.com/agentid/agentid/policy"
	"github.com/agentid/agentid/proxy"
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
	)
	cmd := &cobra.Command{
		Use:   "proxy --policy FILE [--audit FILE] -- COMMAND [ARGS...]",
		Short: "Enforce a policy between an MCP client (stdio) and an MCP server",
		Long: `proxy spawns the MCP server COMMAND and relays newline-delimited JSON-RPC
between it and this process's stdin/stdout, enforcing the AgentPolicy on every
message. Denied calls are answered with AIP error codes; every decision is
written to the audit log (JSON Lines, mode 0600). Logs go to stderr.`,
		RunE: func(cmd *cobra.Command, args []string) error {
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
			p, warnings, err := policy.Load(policyPath)
			if err != nil {
				return err
			}
			for _, w := range warnings {
				log.Warn("policy", "warning", w.String())
			}
			if auditPath == "" {
				auditPath = defaultAuditPath()
			}
			auditLog, err := audit.Open(auditPath)
			if err != nil {
				return err
			}
			defer auditLog.Close()
			engine, err := policy.NewEngine(p, policy.EngineOptions{ExtraProtectedPaths: []string{auditLog.Path()}})
			if err != nil {
				return err
			}
			scanner, err := dlp.New(p.Spec.DLP)
			if err != nil {
				return err
			}
			approver := approve.Default()
			if webhook != "" {
				approver = approve.Webhook(webhook, approve.WebhookOptions{Timeout: approvalTimeout})
			}
			px := proxy.New(proxy.Config{
				Engine: engine, DLP: scanner, Approver: approver, ApprovalTimeout: approvalTimeout,
				Audit: auditLog, Log: log, MaxLineSize: maxLine, ShowBlockedTools: showBlocked,
			})
			var serverStderr io.Writer = os.Stderr
			if d := p.Spec.DLP; d.IsEnabled() && d.FilterStderr != nil && *d.FilterStderr {
				filter := proxy.StderrFilter(os.Stderr, scanner)
				defer filter.Close()
				serverStderr = filter
			}
			sig := make(chan os.Signal, 2)
			signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
			defer signal.Stop(sig)
			log.Info("proxy started", "policy", p.Path, "mode", p.Mode(), "audit", auditLog.Path(), "server", argv[0])
			code, err := px.Run(context.Background(), proxy.Command{Path: argv[0], Args: argv[1:], Stderr: serverStderr},
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
	return cmd
}

// defaultAuditPath is under the XDG state directory, outside any project
// directory an agent is likely to be given.
func defaultAuditPath() string {
	dir := os.Getenv("XDG_STATE_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "agentid-audit.jsonl"
		}
		dir = filepath.Join(home, ".local", "state")
	}
	dir = filepath.Join(dir, "agentid")
	_ = os.MkdirAll(dir, 0o700)
	return filepath.Join(dir, "audit.jsonl")
}
