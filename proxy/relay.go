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

// Limits of one batch (see read): a batch waits for no input, so these only
// bound the memory it holds (its lines and what it sends) and the delay of
// the first message in it.
const (
	maxBatch      = 64
	maxBatchBytes = 1 << 20
)

// read carries one direction: every line is decided by the core and its
// verdict carried out, until the input ends.
//
// The lines that arrived together are decided first and then carried out
// together (a batch): their audit records in one write, then what they
// forward to each peer in one write. Each verdict is still carried out only
// after its records are written, and a line that is alone in the buffer is
// carried out before the next read, so a batch never waits for input. The
// lines are the reader's buffer, not copies (ReadShared): they are written
// before the buffer is reused, and the buffer of a line held for an approval
// is never reused.
func (r *relay) read(in io.Reader, peer string,
	decide func(context.Context, *enforce.Session, []byte) enforce.Verdict, oversized func(*enforce.Session, []byte) enforce.Verdict) error {
	rd := jsonrpc.NewReader(in, r.cfg.MaxLineSize)
	var b batch
	keep := false // a verdict of the batch holds its line beyond the batch
	for {
		line, err := rd.ReadShared()
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
		keep = keep || v.Approval != nil
		b.add(v, len(line))
		if rd.Buffered() && !b.full() {
			continue
		}
		if err := r.carryOut(&b); err != nil {
			return err
		}
		if keep {
			rd.Keep()
		} else {
			rd.Reuse()
		}
		keep = false
	}
}

// batch is the verdicts of the lines that arrived together, with the buffers
// that carry them out.
type batch struct {
	verdicts []enforce.Verdict
	size     int // bytes the lines read and the verdicts send
	// recorded[i] says verdicts[i] has records in audit.
	recorded []bool
	audit    audit.Batch
	toServer []byte
	toClient []byte
}

// add appends the verdict on a line of n bytes.
func (b *batch) add(v enforce.Verdict, n int) {
	b.verdicts = append(b.verdicts, v)
	b.size += n + len(v.ToServer) + len(v.ToClient)
}

func (b *batch) full() bool { return len(b.verdicts) >= maxBatch || b.size >= maxBatchBytes }

// reset empties b, dropping what refers to the lines, and buffers that one
// huge batch grew.
func (b *batch) reset() {
	clear(b.verdicts)
	b.verdicts, b.recorded, b.size = b.verdicts[:0], b.recorded[:0], 0
	for _, buf := range []*[]byte{&b.toServer, &b.toClient} {
		if cap(*buf) > maxBatchBytes {
			*buf = nil
		}
		*buf = (*buf)[:0]
	}
}

// carryOut writes the audit records of the batch's verdicts, then what they
// send, and empties the batch. A verdict whose records cannot be written is
// not carried out (Verdict.AuditFailed). It returns an error only when a peer
// can no longer be written to.
func (r *relay) carryOut(b *batch) error {
	defer b.reset()
	for i := range b.verdicts {
		v := &b.verdicts[i]
		ok := len(v.Audit) > 0
		if ok {
			if err := b.audit.Add(v.Audit); err != nil {
				r.auditFailed(v, err)
				ok = false
			}
		}
		b.recorded = append(b.recorded, ok)
	}
	if err := r.cfg.Audit.WriteBatch(&b.audit); err != nil {
		for i := range b.verdicts {
			if b.recorded[i] {
				r.auditFailed(&b.verdicts[i], err)
			}
		}
	}
	for i := range b.verdicts {
		v := &b.verdicts[i]
		if v.ToServer != nil {
			b.toServer = append(append(b.toServer, v.ToServer...), '\n')
		}
		if v.ToClient != nil {
			b.toClient = append(append(b.toClient, v.ToClient...), '\n')
		}
	}
	if err := r.toServer.write(b.toServer); err != nil {
		return err
	}
	if err := r.toClient.write(b.toClient); err != nil {
		return err
	}
	for i := range b.verdicts {
		if a := b.verdicts[i].Approval; a != nil {
			r.approve(a)
		}
	}
	return nil
}

// auditFailed handles a verdict whose records could not be written.
func (r *relay) auditFailed(v *enforce.Verdict, err error) {
	r.cfg.Log.Error("audit log write failed", "error", err, "failures", r.cfg.Audit.Status().Failures)
	if !r.cfg.AuditBestEffort {
		v.AuditFailed()
	}
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
		var b batch
		b.add(r.cfg.Core.Resolve(a, answer), 0)
		if err := r.carryOut(&b); err != nil {
			r.cfg.Log.Warn("carrying out an approval failed", "error", err)
		}
	}()
}
