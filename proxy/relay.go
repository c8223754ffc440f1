package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/agentid/agentid/approve"
	"github.com/agentid/agentid/audit"
	"github.com/agentid/agentid/enforce"
	"github.com/agentid/agentid/jsonrpc"
)

// Config wires the parts the proxy relays with. Every decision is the
// enforcement core's; the proxy owns framing, the two pipes and the
// goroutines.
type Config struct {
	// Core decides every message. Required.
	Core *enforce.Core
	// Approver answers `action: ask`; nil means approve.Headless (deny).
	Approver approve.Approver
	// Audit receives the records of every verdict; nil discards.
	Audit *audit.Logger
	// AuditBestEffort lets traffic go on when an audit record cannot be
	// written. By default such a message is not forwarded (a request is
	// answered with an internal error): a decision that cannot be recorded
	// is not carried out.
	AuditBestEffort bool
	// Log receives diagnostics (never protocol traffic); nil discards.
	Log *slog.Logger
	// MaxLineSize caps one message; 0 means jsonrpc.DefaultMaxLineSize.
	MaxLineSize int
}

// Proxy relays one client/server conversation through the core.
type Proxy struct {
	cfg Config
}

// New returns a proxy for cfg. It panics if cfg.Core is nil, which is a
// programming error: a proxy without a policy must not exist.
func New(cfg Config) *Proxy {
	if cfg.Core == nil {
		panic("proxy: nil enforcement core")
	}
	if cfg.Approver == nil {
		cfg.Approver = approve.Headless()
	}
	if cfg.Audit == nil {
		cfg.Audit = audit.Discard()
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxLineSize <= 0 {
		cfg.MaxLineSize = jsonrpc.DefaultMaxLineSize
	}
	return &Proxy{cfg: cfg}
}

// Relay runs one conversation: client messages are read from fromClient and,
// when allowed, written to toServer; server messages are read from fromServer
// and written to toClient. It returns when the server's output ends (the
// server exited or closed stdout) or ctx is cancelled. When the client's input
// ends, toServer is closed if it is an io.Closer, so that the server sees EOF
// and can exit, as the MCP stdio transport prescribes.
func (p *Proxy) Relay(ctx context.Context, fromClient io.Reader, toClient io.Writer, toServer io.Writer, fromServer io.Reader) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := &relay{
		cfg:      &p.cfg,
		ctx:      ctx,
		session:  enforce.NewSession(),
		toClient: &lineWriter{w: toClient},
		toServer: &lineWriter{w: toServer},
	}
	upstreamDone := make(chan error, 1)
	go func() {
		err := r.read(fromClient, "client", r.cfg.Core.FromClient,
			func(_ *enforce.Session, head []byte) enforce.Verdict { return r.cfg.Core.ClientOversized(head) })
		r.approvals.Wait()
		if c, ok := toServer.(io.Closer); ok {
			c.Close()
		}
		upstreamDone <- err
	}()
	downstreamDone := make(chan error, 1)
	go func() {
		downstreamDone <- r.read(fromServer, "server", r.cfg.Core.FromServer, r.cfg.Core.ServerOversized)
	}()

	select {
	case err := <-downstreamDone:
		// The server is gone; nothing more can be answered. Approvals still
		// pending are cancelled by the deferred cancel.
		return err
	case <-ctx.Done():
		return ctx.Err()
	case err := <-upstreamDone:
		if err != nil {
			return err
		}
		// The client is done; let the server finish what it was asked.
		select {
		case err := <-downstreamDone:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// relay is the state of one conversation.
type relay struct {
	cfg      *Config
	ctx      context.Context
	session  *enforce.Session
	toClient *lineWriter
	toServer *lineWriter

	approvals sync.WaitGroup
}

// read carries one direction: every line is decided by the core and its
// verdict carried out, until the input ends.
func (r *relay) read(in io.Reader, peer string,
	decide func(context.Context, *enforce.Session, []byte) enforce.Verdict, oversized func(*enforce.Session, []byte) enforce.Verdict) error {
	rd := jsonrpc.NewReader(in, r.cfg.MaxLineSize)
	for {
		line, err := rd.ReadLine()
		var v enforce.Verdict
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case errors.Is(err, jsonrpc.ErrLineTooLong):
			r.cfg.Log.Warn(peer+" message exceeds the line size limit", "limit", r.cfg.MaxLineSize)
			v = oversized(r.session, rd.Head())
		case err != nil:
			return fmt.Errorf("proxy: reading %s: %w", peer, err)
		default:
			v = decide(r.ctx, r.session, line)
		}
		if err := r.carryOut(v); err != nil {
			return err
		}
	}
}

// carryOut writes a verdict's audit records, then its messages. It returns
// an error only when a peer can no longer be written to.
func (r *relay) carryOut(v enforce.Verdict) error {
	if err := r.cfg.Audit.LogAll(v.Audit); err != nil {
		r.cfg.Log.Error("audit log write failed", "error", err, "failures", r.cfg.Audit.Status().Failures)
		if !r.cfg.AuditBestEffort {
			v.AuditFailed()
		}
	}
	if v.Approval != nil {
		r.approve(v.Approval)
	}
	if err := r.toServer.writeLine(v.ToServer); err != nil {
		return err
	}
	return r.toClient.writeLine(v.ToClient)
}

// approve obtains an approval off the read loop, so a pending prompt never
// stalls other traffic, then carries out the core's verdict on the answer.
func (r *relay) approve(a *enforce.Approval) {
	r.approvals.Add(1)
	go func() {
		defer r.approvals.Done()
		answer, err := a.Obtain(r.ctx, r.cfg.Approver)
		if err != nil {
			r.cfg.Log.Warn("approval failed", "tool", a.Request.Tool, "error", err)
		}
		if err := r.carryOut(r.cfg.Core.Resolve(a, answer)); err != nil {
			r.cfg.Log.Warn("carrying out an approval failed", "error", err)
		}
	}()
}
