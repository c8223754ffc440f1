package approve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// TerminalOptions configures Terminal.
type TerminalOptions struct {
	// Path is the terminal device; default "/dev/tty", the controlling
	// terminal. Never point it at the proxy's stdin or stdout.
	Path string
	// Timeout bounds each approval, measured from the Approve call and
	// including time spent waiting for an earlier prompt; default 60s.
	Timeout time.Duration
	// In and Out replace the device, for tests. Both must be set, and Path
	// is then not opened.
	In  io.Reader
	Out io.Writer
}

const (
	defaultTimeout = 60 * time.Second
	// maxShown caps how much of the arguments a prompt prints: enough to
	// judge a call, not enough for a hostile argument to scroll the
	// question off the screen.
	maxShown = 1024
	// maxAnswer caps one answer line; longer input counts as garbage.
	maxAnswer = 256
	// maxAttempts is how many unrecognised answers are tolerated before
	// the prompt gives up and denies.
	maxAttempts = 3
)

// terminal prompts on a terminal. The semaphore serialises prompts, and
// reader state is only touched while holding it.
type terminal struct {
	sem     chan struct{}
	out     io.Writer
	in      *lineReader
	tty     *os.File // nil when In/Out were given
	timeout time.Duration
}

// Terminal returns an Approver that asks on a terminal:
//
//	agentid: approval required (action: ask)
//	  tool:      write_file
//	  arguments: {"path":"/tmp/x","content":"[REDACTED:aws_key]"}
//	  policy:    a3c7f2e8d9b4…
//	  session:   550e8400-e29b-41d4-a716-446655440000
//	  call:      9f86d081884c…
//	  expires:   10:31:45 (in 60s)
//	Allow this call? [y/N]
//
// "y" or "yes" approves; "n", "no" or an empty line denies (the default is
// the safe one). Anything else is asked again, up to three times, and then
// denied. Answers are case-insensitive. Input typed before a question was
// printed is discarded, so a stray "y" cannot approve a later call.
//
// Strings from the request are printed with control characters, bidi
// overrides and other invisible characters escaped, so a hostile tool
// argument cannot inject terminal escape sequences or disguise itself.
//
// Terminal opens Path at once and returns an error if it cannot be opened,
// typically because the process has no controlling terminal. The returned
// Approver implements io.Closer, which closes the device.
//
// When the proxy is not in the terminal's foreground process group (a
// shell's background job), reading would stop the process with SIGTTIN, so
// such prompts are denied with an error instead.
func Terminal(opts TerminalOptions) (Approver, error) {
	t := &terminal{sem: make(chan struct{}, 1), timeout: opts.Timeout}
	if t.timeout <= 0 {
		t.timeout = defaultTimeout
	}
	switch {
	case opts.In != nil && opts.Out != nil:
		t.in, t.out = newLineReader(opts.In), opts.Out
	case opts.In != nil || opts.Out != nil:
		return nil, errors.New("approve: terminal: In and Out must be set together")
	default:
		path := opts.Path
		if path == "" {
			path = "/dev/tty"
		}
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return nil, fmt.Errorf("approve: open terminal: %w", err)
		}
		t.tty, t.in, t.out = f, newLineReader(f), f
	}
	return t, nil
}

// Close closes the terminal device opened by Terminal.
func (t *terminal) Close() error {
	if t.tty == nil {
		return nil
	}
	return t.tty.Close()
}

func (t *terminal) Approve(ctx context.Context, req Request) (Answer, error) {
	ctx, cancel := context.WithDeadline(ctx, deadline(t.timeout, req.Expires))
	defer cancel()

	select {
	case t.sem <- struct{}{}:
	case <-ctx.Done():
		return TimedOut, fmt.Errorf("approve: timed out waiting for an earlier prompt: %w", ctx.Err())
	}
	defer func() { <-t.sem }()
	// select picks randomly when both cases are ready.
	if err := ctx.Err(); err != nil {
		return TimedOut, fmt.Errorf("approve: %w", err)
	}
	if t.tty != nil && !isForeground(t.tty) {
		return Denied, errors.New("approve: the process is not in the terminal's foreground process group; cannot prompt")
	}

	const question = "Allow this call? [y/N] "
	text := prompt(req) + question
	for attempt := 1; ; attempt++ {
		// Whatever was typed before the question is visible does not
		// answer it. Discard it before printing, not after, or a quick
		// answer to the printed question could be thrown away.
		t.discardTypeahead()
		since := time.Now()
		if _, err := io.WriteString(t.out, text); err != nil {
			return Denied, fmt.Errorf("approve: write prompt: %w", err)
		}
		line, err := t.in.readLine(ctx, since)
		if err != nil {
			if ctx.Err() != nil {
				io.WriteString(t.out, "\nagentid: no answer in time; the call is refused.\n")
				return TimedOut, fmt.Errorf("approve: %w", ctx.Err())
			}
			io.WriteString(t.out, "\nagentid: cannot read the answer; the call is refused.\n")
			return Denied, fmt.Errorf("approve: read answer: %w", err)
		}
		switch strings.ToLower(strings.TrimSpace(line)) {
		case "y", "yes":
			io.WriteString(t.out, "agentid: approved.\n")
			return Approved, nil
		case "n", "no", "":
			io.WriteString(t.out, "agentid: denied.\n")
			return Denied, nil
		}
		if attempt == maxAttempts {
			io.WriteString(t.out, "agentid: no valid answer; the call is refused.\n")
			return Denied, errors.New("approve: no valid answer after 3 attempts")
		}
		text = "Please answer y or n. " + question
	}
}

func (t *terminal) discardTypeahead() {
	if t.tty != nil {
		flushInput(t.tty)
	}
	t.in.discardBuffered()
}

// prompt renders the request for a human.
func prompt(req Request) string {
	var b strings.Builder
	b.WriteString("\nagentid: approval required (action: ask)\n")
	fmt.Fprintf(&b, "  tool:      %s\n", sanitize(req.Tool, 128))
	args := []byte(req.Arguments)
	var compact bytes.Buffer
	if json.Compact(&compact, args) == nil {
		args = compact.Bytes()
	}
	if len(args) == 0 {
		args = []byte("{}")
	}
	fmt.Fprintf(&b, "  arguments: %s\n", sanitize(string(args), maxShown))
	if req.PolicyHash != "" {
		fmt.Fprintf(&b, "  policy:    %s\n", sanitize(prefix(req.PolicyHash, 12), 32))
	}
	if req.SessionID != "" {
		fmt.Fprintf(&b, "  session:   %s\n", sanitize(req.SessionID, 64))
	}
	if req.Digest != "" {
		fmt.Fprintf(&b, "  call:      %s\n", sanitize(prefix(req.Digest, 12), 32))
	}
	if !req.Expires.IsZero() {
		fmt.Fprintf(&b, "  expires:   %s (in %s)\n", req.Expires.Local().Format("15:04:05"),
			time.Until(req.Expires).Round(time.Second))
	}
	return b.String()
}

func prefix(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// sanitize makes s safe to print on a terminal and caps it at about max
// bytes. Only graphic characters and plain spaces pass through; C0 and C1
// controls (ESC, CSI), DEL, bidi overrides, zero-width and other format
// characters, line separators and invalid UTF-8 are shown as escapes. The
// backslash is escaped too, so the escapes are unambiguous.
func sanitize(s string, max int) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		if b.Len() >= max {
			fmt.Fprintf(&b, "… (%d more bytes)", len(s)-i)
			break
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case r == ' ' || (r != utf8.RuneError && unicode.IsGraphic(r) && !unicode.Is(unicode.Cf, r)):
			b.WriteRune(r)
		case r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			fmt.Fprintf(&b, `\u{%04x}`, r)
		}
		i += size
	}
	return b.String()
}

// lineReader reads answer lines. At most one Read is outstanding at a time;
// when a prompt ends while a Read is blocked, the Read is either cut short
// with a deadline (a real terminal) or left running, and its result is
// claimed by the next prompt, which ignores it if it arrived before that
// prompt was shown.
type lineReader struct {
	br       *bufio.Reader
	deadline interface{ SetReadDeadline(time.Time) error }
	pending  chan lineResult // non-nil while a Read is outstanding
}

type lineResult struct {
	line string
	err  error
	at   time.Time
}

func newLineReader(r io.Reader) *lineReader {
	lr := &lineReader{br: bufio.NewReaderSize(r, maxAnswer)}
	if d, ok := r.(interface{ SetReadDeadline(time.Time) error }); ok {
		// Probe: files that are not pollable reject deadlines.
		if d.SetReadDeadline(time.Time{}) == nil {
			lr.deadline = d
		}
	}
	return lr
}

// discardBuffered drops input that was read but not yet consumed. It must
// not touch the reader while a Read is outstanding.
func (lr *lineReader) discardBuffered() {
	if lr.pending == nil {
		lr.br.Discard(lr.br.Buffered())
	}
}

// readLine returns the first line completed after since.
func (lr *lineReader) readLine(ctx context.Context, since time.Time) (string, error) {
	for {
		if lr.pending == nil {
			if lr.deadline != nil {
				lr.deadline.SetReadDeadline(time.Time{})
			}
			ch := make(chan lineResult, 1)
			lr.pending = ch
			go func() {
				line, err := lr.readOne()
				ch <- lineResult{line, err, time.Now()}
			}()
		}
		select {
		case res := <-lr.pending:
			lr.pending = nil
			if errors.Is(res.err, os.ErrDeadlineExceeded) {
				// The cut-off of an earlier prompt's Read, delivered
				// late: not an answer to this one. Read again.
				continue
			}
			if res.at.Before(since) {
				// Typed before this question was asked, and so is
				// anything that arrived in the same read.
				lr.br.Discard(lr.br.Buffered())
				continue
			}
			return res.line, res.err
		case <-ctx.Done():
			if lr.deadline != nil {
				// Unblock the Read so no goroutine keeps stealing
				// keystrokes from the terminal between prompts.
				lr.deadline.SetReadDeadline(time.Now())
			}
			return "", ctx.Err()
		}
	}
}

// readOne reads one line of at most maxAnswer bytes, ended by "\n" or "\r"
// (a terminal left in raw mode by another program sends "\r" for Enter). A
// longer line is consumed whole and returned as an unrecognisable answer.
func (lr *lineReader) readOne() (string, error) {
	var line []byte
	tooLong := false
	for {
		c, err := lr.br.ReadByte()
		if err != nil {
			// A last line without a terminator still counts.
			if errors.Is(err, io.EOF) && len(line) > 0 && !tooLong {
				return string(line), nil
			}
			return "", err
		}
		switch {
		case c == '\n' || c == '\r':
			if tooLong {
				return "\x00", nil
			}
			return string(line), nil
		case len(line) < maxAnswer:
			line = append(line, c)
		default:
			tooLong = true
		}
	}
}
