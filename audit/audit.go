package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/agentid/agentid/aip"
)

// Record is one audit log entry. Direction, Decision and PolicyMode are
// required; Violation is always written. Every other field is omitted when
// it holds its zero value.
//
// Events that are not tied to one relayed message (TOKEN_ISSUED,
// TOKEN_ROTATED, ...) still carry the required fields; by convention they use
// Direction Upstream, because identity is attached to client requests, and
// Decision Allow unless the event denied something.
type Record struct {
	// Timestamp is set to the current time by Log when zero. It is written
	// in UTC as RFC 3339 with milliseconds ("2026-01-24T10:30:45.123Z").
	Timestamp  time.Time
	Direction  string // aip.Upstream or aip.Downstream
	Decision   string // aip.AuditAllow, aip.AuditBlock, aip.AuditAllowMonitor or aip.AuditRateLimited
	PolicyMode string // aip.ModeEnforce or aip.ModeMonitor
	Violation  bool
	// Validated says that Args and ID (below, where set) are JSON values
	// a strict decoder admitted (jsonrpc.Decode, which validates under
	// strictjson.MCP), or values built from such by splicing in valid
	// literals (dlp.RedactJSON): they are compacted without being
	// validated a second time. Leave it false for bytes from anywhere
	// else; those are validated first, and written as a JSON string when
	// they are not valid UTF-8 JSON. (It sits here, beside Violation, so
	// that a Record stays the size it was.)
	Validated bool

	// Event names what happened when it is more than a plain decision:
	// "METHOD_BLOCKED", "DLP_TRIGGERED", "APPROVAL", "TOKEN_ISSUED", ...
	Event  string
	Method string
	Tool   string
	// Args are the tool arguments, already redacted by the caller. Valid
	// JSON is written compacted as a JSON value; anything else is written
	// as a JSON string so that it cannot break the line.
	Args       json.RawMessage
	FailedArg  string
	FailedRule string
	Reason     string
	Code       int             // AIP error code of a denial
	ID         json.RawMessage // JSON-RPC id, handled like Args
	SessionID  string
	TokenID    string // the token nonce (§8.2)
	PolicyHash string

	DLPRule       string
	DLPAction     string
	DLPMatchCount int
	Forwarded     *bool
	FailureReason string

	// Extra holds further fields, written after the named ones in sorted
	// key order (for example "expires_at", "old_token_id", "error").
	// A key that equals a named field's key, or slog's "time", "level" or
	// "msg", makes Log fail: duplicate keys are read differently by
	// different JSON parsers, and a forged "decision" must not be possible.
	// Values of type string, bool, integer, time.Time and json.RawMessage
	// are encoded directly; anything else goes through encoding/json.
	Extra map[string]any
}

// reservedKeys are the keys Extra must not use.
var reservedKeys = map[string]bool{
	"timestamp": true, "direction": true, "decision": true, "policy_mode": true,
	"violation": true, "event": true, "method": true, "tool": true, "args": true,
	"failed_arg": true, "failed_rule": true, "reason": true, "code": true,
	"id": true, "session_id": true, "token_id": true, "policy_hash": true,
	"dlp_rule": true, "dlp_action": true, "dlp_match_count": true,
	"forwarded": true, "failure_reason": true,
	"time": true, "level": true, "msg": true,
}

// Logger writes Records as JSON Lines. It is safe for concurrent use.
// A nil *Logger discards records, like Discard.
type Logger struct {
	mu      sync.Mutex
	w       io.Writer // nil for Discard
	f       *os.File  // non-nil when Open created the Logger
	path    string
	closed  bool
	discard bool

	// failures counts the batches that could not be written; lastErr is the
	// latest such error, for Status.
	failures uint64
	lastErr  error
	lastAt   time.Time

	// Group commit: while one caller's write(2) is under way (writing),
	// the batches of others gather in pending; when it returns, one of
	// them writes the whole group with one write(2). Each waiter learns
	// the outcome of the write that held its batch.
	writing bool
	pending []byte
	waiters []*waiter
	spare   []byte // the buffer pending had before the last group write
	cond    *sync.Cond
}

// waiter is a caller whose batch is in pending.
type waiter struct {
	done bool
	err  error
}

// Status is a Logger's health: how many batches (a decision's records, or
// the records a relay wrote together) could not be written, and
// the latest failure. The validation server reports it in /health; the
// proxy refuses the calls whose records fail.
type Status struct {
	Failures    uint64
	LastError   string    // "" when no write has failed
	LastFailure time.Time // zero when no write has failed
}

// Status reports the Logger's write failures so far.
func (l *Logger) Status() Status {
	if l == nil {
		return Status{}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	st := Status{Failures: l.failures, LastFailure: l.lastAt}
	if l.lastErr != nil {
		st.LastError = l.lastErr.Error()
	}
	return st
}

// errClosed is returned by Log after Close.
var errClosed = errors.New("audit: logger is closed")

// stdoutNames are spellings of the process's standard output. They are
// refused by name because a path like /dev/fd/1 need not exist in a
// sandbox, and "-" conventionally means stdout on a command line.
var stdoutNames = map[string]bool{
	"-":               true,
	"/dev/stdout":     true,
	"/dev/fd/1":       true,
	"/proc/self/fd/1": true,
}

// Open opens the audit log at path for appending, creating it with mode 0600
// if it does not exist.
//
// Open refuses any path that designates the process's standard output,
// which carries the protocol: the names "-", "/dev/stdout", "/dev/fd/1" and
// "/proc/self/fd/1", and any path that is the same file as os.Stdout.
//
// An existing regular file that is group- or world-writable is refused
// rather than silently chmod'ed: someone else can already have altered its
// contents, and the operator should decide what to do with it. A file that
// is merely readable by others (0644, as older tools create it) is accepted
// as is. Non-regular files (a FIFO to a log shipper, /dev/stderr) are
// accepted without a mode check.
func Open(path string) (*Logger, error) {
	if path == "" {
		return nil, errors.New("audit: empty log path")
	}
	if stdoutNames[path] || stdoutNames[filepath.Clean(path)] {
		return nil, fmt.Errorf("audit: refusing to write the audit log to standard output (%q): stdout carries the protocol", path)
	}
	// Check before opening too: opening a FIFO that is our stdout would
	// succeed, and we must not even create a writer for it.
	if fi, err := os.Stat(path); err == nil && isStdout(fi) {
		return nil, fmt.Errorf("audit: refusing to write the audit log to %q: it is the process's standard output, which carries the protocol", path)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: open log: %w", err)
	}
	// Re-check on the opened descriptor: the path may have been swapped
	// (symlink) between the Stat and the open.
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: stat log: %w", err)
	}
	if isStdout(fi) {
		f.Close()
		return nil, fmt.Errorf("audit: refusing to write the audit log to %q: it is the process's standard output, which carries the protocol", path)
	}
	if fi.Mode().IsRegular() && fi.Mode().Perm()&0o022 != 0 {
		f.Close()
		return nil, fmt.Errorf("audit: refusing log file %q with mode %#o: it is writable by group or others (chmod 600 it)", path, fi.Mode().Perm())
	}
	return &Logger{w: f, f: f, path: path}, nil
}

func isStdout(fi os.FileInfo) bool {
	so, err := os.Stdout.Stat()
	return err == nil && os.SameFile(fi, so)
}

// New returns a Logger that writes to w, for tests and for logging to
// stderr. Close does not close w.
func New(w io.Writer) *Logger {
	return &Logger{w: w}
}

// Discard returns a Logger that writes nothing. Log still validates records,
// so that a malformed record fails the same way with and without a log.
func Discard() *Logger {
	return &Logger{discard: true}
}

// Log writes r as one line. It returns an error, and writes nothing, when r
// is invalid (see the package documentation); it also returns write errors.
func (l *Logger) Log(r Record) error {
	return l.LogAll([]Record{r})
}

// LogAll writes the records of one decision as consecutive lines in a
// single write: either every record is invalid-free and handed to the
// operating system together, or an error is returned. An invalid record
// fails the whole batch before anything is written.
func (l *Logger) LogAll(records []Record) error {
	if len(records) == 0 {
		return nil
	}
	if l == nil || l.discard {
		for i := range records {
			if err := validate(&records[i]); err != nil {
				return err
			}
		}
		return nil
	}
	bp := bufPool.Get().(*[]byte)
	b := Batch{buf: (*bp)[:0]}
	err := b.Add(records)
	if err == nil {
		err = l.WriteBatch(&b)
	}
	putBuf(bp, b.buf)
	return err
}

// Batch gathers the records of several decisions so that one write puts them
// all in the log (Logger.WriteBatch): a relay that decided several messages
// that arrived together records them with one write(2) before it carries any
// of them out. The zero Batch is empty and ready to use. A Batch is not safe
// for concurrent use.
type Batch struct {
	buf []byte
}

// Add validates and encodes the records of one decision. When a record is
// invalid it returns the error and adds nothing: that decision fails alone,
// and the records added before and after it are still written. Records
// without a timestamp get the current time.
func (b *Batch) Add(records []Record) error {
	for i := range records {
		if err := validate(&records[i]); err != nil {
			return err
		}
	}
	n := len(b.buf)
	var now time.Time
	for i := range records {
		r := &records[i]
		if r.Timestamp.IsZero() {
			if now.IsZero() {
				now = time.Now()
			}
			r.Timestamp = now
		}
		var err error
		if b.buf, err = appendRecord(b.buf, r); err != nil {
			b.buf = b.buf[:n]
			return err
		}
	}
	return nil
}

// Len returns the size of the encoded records, so that a caller can bound
// one write.
func (b *Batch) Len() int { return len(b.buf) }

// WriteBatch writes every record added to b in a single write, then empties
// b: either all of them are handed to the operating system together, or an
// error is returned and none of their decisions may be carried out. An empty
// batch writes nothing.
//
// Concurrent callers share write(2)s (group commit): a caller that finds a
// write under way adds its batch to the next one and waits for it, so that
// under load the log costs one system call per group rather than per
// decision, and every caller still returns only once its records were
// written, or with the error of the write that held them.
func (l *Logger) WriteBatch(b *Batch) error {
	if len(b.buf) == 0 || l == nil || l.discard {
		b.reset()
		return nil
	}
	defer b.reset()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errClosed
	}
	if l.cond == nil {
		l.cond = sync.NewCond(&l.mu)
	}
	if !l.writing && len(l.waiters) == 0 {
		// Nobody else is writing: write this batch as it is.
		l.writing = true
		err := l.writeLocked(b.buf, 1)
		l.writing = false
		l.cond.Broadcast()
		return err
	}
	w := &waiter{}
	l.pending = append(l.pending, b.buf...)
	l.waiters = append(l.waiters, w)
	for !w.done {
		if l.writing {
			l.cond.Wait()
			continue
		}
		// The write under way has returned: write everything that
		// gathered meanwhile, this batch included, then leave the next
		// group to one of its waiters.
		l.writing = true
		group, waiters := l.pending, l.waiters
		l.pending, l.waiters = l.spare[:0], nil
		err := errClosed
		if !l.closed {
			err = l.writeLocked(group, len(waiters))
		}
		for _, g := range waiters {
			g.done, g.err = true, err
		}
		if cap(group) > 1<<20 {
			group = nil // one huge group must not pin its buffer
		}
		l.spare = group
		l.writing = false
		l.cond.Broadcast()
	}
	return w.err
}

// writeLocked writes buf, the batches of n callers, with l.mu released
// during the write(2), which l.writing reserves for the caller. A failure
// counts n batches. One Write per batch or group: with
// O_APPEND this is one write(2), so lines from other processes appending to
// the same file cannot interleave.
func (l *Logger) writeLocked(buf []byte, n int) error {
	l.mu.Unlock()
	_, err := l.w.Write(buf)
	l.mu.Lock()
	if err != nil {
		err = fmt.Errorf("audit: write: %w", err)
		l.failures += uint64(n)
		l.lastErr, l.lastAt = err, time.Now()
	}
	return err
}

// reset empties b, dropping a buffer that one huge batch grew, so that it
// does not pin memory for the life of the process.
func (b *Batch) reset() {
	if cap(b.buf) > 1<<20 {
		b.buf = nil
	}
	b.buf = b.buf[:0]
}

// Close closes the log file opened by Open. Later calls to Log fail.
func (l *Logger) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	for l.writing {
		l.cond.Wait() // the file is not closed under a write
	}
	if l.f != nil {
		if err := l.f.Close(); err != nil {
			return fmt.Errorf("audit: close: %w", err)
		}
	}
	return nil
}

// Path returns the file path given to Open, or "" for a Logger that does not
// write to a file it opened. The proxy adds it to its protected paths.
func (l *Logger) Path() string {
	if l == nil {
		return ""
	}
	return l.path
}

func validate(r *Record) error {
	switch r.Direction {
	case aip.Upstream, aip.Downstream:
	default:
		return fmt.Errorf("audit: invalid direction %q (want %q or %q)", r.Direction, aip.Upstream, aip.Downstream)
	}
	switch r.Decision {
	case aip.AuditAllow, aip.AuditBlock, aip.AuditAllowMonitor, aip.AuditRateLimited:
	default:
		return fmt.Errorf("audit: invalid decision %q", r.Decision)
	}
	switch r.PolicyMode {
	case aip.ModeEnforce, aip.ModeMonitor:
	default:
		return fmt.Errorf("audit: invalid policy mode %q (want %q or %q)", r.PolicyMode, aip.ModeEnforce, aip.ModeMonitor)
	}
	for k := range r.Extra {
		if k == "" || reservedKeys[k] {
			return fmt.Errorf("audit: extra field %q is reserved", k)
		}
	}
	return nil
}

// bufPool recycles line buffers; records are built once per message.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// putBuf returns a buffer to the pool unless it grew large, so that one huge
// record does not pin memory for the life of the process.
func putBuf(bp *[]byte, buf []byte) {
	if cap(buf) > 64<<10 {
		return
	}
	*bp = buf[:0]
	bufPool.Put(bp)
}
