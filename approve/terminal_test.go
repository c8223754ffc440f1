package approve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// screen is a terminal's output side that tests can wait on.
type screen struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func newScreen() *screen { return &screen{changed: make(chan struct{}, 1)} }

func (s *screen) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf.Write(p)
	select {
	case s.changed <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (s *screen) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// waitFor waits until the n-th occurrence of sub has been written.
func (s *screen) waitFor(t *testing.T, sub string, n int) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for strings.Count(s.String(), sub) < n {
		select {
		case <-s.changed:
		case <-timeout:
			t.Fatalf("timed out waiting for %q #%d; screen:\n%s", sub, n, s.String())
		}
	}
}

type result struct {
	a   Answer
	err error
}

func newTestTerminal(t *testing.T, timeout time.Duration) (Approver, *io.PipeWriter, *screen) {
	t.Helper()
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() })
	scr := newScreen()
	a, err := Terminal(TerminalOptions{In: pr, Out: scr, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return a, pw, scr
}

func approveAsync(a Approver, ctx context.Context, req Request) chan result {
	ch := make(chan result, 1)
	go func() {
		an, err := a.Approve(ctx, req)
		ch <- result{an, err}
	}()
	return ch
}

func await(t *testing.T, ch chan result) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("Approve did not return")
	}
	return result{}
}

var sampleReq = Request{
	Tool:       "write_file",
	Arguments:  json.RawMessage(`{"path":"/tmp/x","content":"[REDACTED:aws_key]"}`),
	PolicyHash: "a3c7f2e8d9b4f1e2c8a7d6f3e9b2c4f1a8e7d3c2b5f4e9a7c3d8f2b6e1a9c4f7",
	SessionID:  "550e8400-e29b-41d4-a716-446655440000",
	Digest:     "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
}

func TestTerminalAnswers(t *testing.T) {
	tests := map[string]struct {
		input   []string // one line per question
		want    Answer
		wantErr bool
	}{
		"y approves":                      {[]string{"y"}, Approved, false},
		"YES approves":                    {[]string{"  YES "}, Approved, false},
		"n denies":                        {[]string{"n"}, Denied, false},
		"no denies":                       {[]string{"No"}, Denied, false},
		"empty line denies":               {[]string{""}, Denied, false},
		"garbage re-prompts then y":       {[]string{"maybe", "y"}, Approved, false},
		"three garbage answers deny":      {[]string{"sure", "ok", "yep"}, Denied, true},
		"overlong answer is garbage":      {[]string{strings.Repeat("y", 1000), "n"}, Denied, false},
		"yes with trailing junk re-asks":  {[]string{"yes please", "n"}, Denied, false},
		"y typed in another script is no": {[]string{"ｙ", "n"}, Denied, false},
		"carriage return ends a line":     {[]string{"y\r"}, Approved, false},
		"CRLF ends a line":                {[]string{"n\r"}, Denied, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			a, pw, scr := newTestTerminal(t, 5*time.Second)
			ch := approveAsync(a, context.Background(), sampleReq)
			for i, line := range tc.input {
				scr.waitFor(t, "[y/N] ", i+1)
				io.WriteString(pw, line+"\n")
			}
			r := await(t, ch)
			if r.a != tc.want || (r.err != nil) != tc.wantErr {
				t.Fatalf("got %v, %v; want %v (error %v)\n%s", r.a, r.err, tc.want, tc.wantErr, scr.String())
			}
		})
	}
}

func TestTerminalPromptShowsTheCall(t *testing.T) {
	a, pw, scr := newTestTerminal(t, 5*time.Second)
	req := sampleReq
	req.Expires = time.Now().Add(30 * time.Second)
	ch := approveAsync(a, context.Background(), req)
	scr.waitFor(t, "[y/N] ", 1)
	io.WriteString(pw, "n\n")
	await(t, ch)
	out := scr.String()
	for _, want := range []string{
		"tool:      write_file",
		`arguments: {"path":"/tmp/x","content":"[REDACTED:aws_key]"}`,
		"policy:    a3c7f2e8d9b4…",
		"session:   550e8400-e29b-41d4-a716-446655440000",
		"call:      9f86d081884c…",
		"expires:   ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("prompt lacks %q:\n%s", want, out)
		}
	}
}

func TestTerminalNeutralizesEscapeSequences(t *testing.T) {
	a, pw, scr := newTestTerminal(t, 5*time.Second)
	req := Request{
		Tool: "evil\x1b]0;pwned\x07\x1b[2J",
		// Not valid JSON: raw ESC, CSI (C1), bidi override, zero-width
		// space, line separator and invalid UTF-8.
		Arguments: json.RawMessage("{\"a\":\"\x1b[31mred\u009b2J\u202eabc\u200b\u2028\xff\r\"}"),
		SessionID: "s\x1bP",
		Digest:    "d",
	}
	ch := approveAsync(a, context.Background(), req)
	scr.waitFor(t, "[y/N] ", 1)
	io.WriteString(pw, "n\n")
	await(t, ch)
	out := scr.String()
	for _, bad := range []string{"\x1b", "\x07", "\u009b", "\u202e", "\u200b", "\u2028", "\r", "\xff"} {
		if strings.Contains(out, bad) {
			t.Errorf("output contains raw %q:\n%q", bad, out)
		}
	}
	for _, want := range []string{`evil\x1b]0;pwned\x07\x1b[2J`, `\x9b2J`, `\u{202e}`, `\u{200b}`, `\u{2028}`, `\xff`, `s\x1bP`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks the escape %q:\n%s", want, out)
		}
	}
	if !utf8.ValidString(out) {
		t.Errorf("output is not valid UTF-8")
	}
}

func TestTerminalTruncatesLongArguments(t *testing.T) {
	a, pw, scr := newTestTerminal(t, 5*time.Second)
	req := sampleReq
	req.Arguments = json.RawMessage(`{"blob":"` + strings.Repeat("A", 100000) + `"}`)
	ch := approveAsync(a, context.Background(), req)
	scr.waitFor(t, "[y/N] ", 1)
	io.WriteString(pw, "n\n")
	await(t, ch)
	out := scr.String()
	if len(out) > 4096 || !strings.Contains(out, "more bytes)") {
		t.Fatalf("prompt is %d bytes or not marked truncated", len(out))
	}
}

func TestTerminalTimesOutWithoutAnAnswer(t *testing.T) {
	a, _, scr := newTestTerminal(t, 50*time.Millisecond)
	r := await(t, approveAsync(a, context.Background(), sampleReq))
	if r.a != TimedOut || !errors.Is(r.err, context.DeadlineExceeded) {
		t.Fatalf("got %v, %v; want TimedOut by the deadline", r.a, r.err)
	}
	if !strings.Contains(scr.String(), "no answer in time") {
		t.Fatalf("no timeout notice:\n%s", scr.String())
	}
}

func TestTerminalHonoursContextAndExpiry(t *testing.T) {
	tests := map[string]func() (context.Context, Request){
		"cancelled context": func() (context.Context, Request) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(30*time.Millisecond, cancel)
			return ctx, sampleReq
		},
		"context deadline": func() (context.Context, Request) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
			time.AfterFunc(time.Second, cancel)
			return ctx, sampleReq
		},
		"request expiry": func() (context.Context, Request) {
			r := sampleReq
			r.Expires = time.Now().Add(30 * time.Millisecond)
			return context.Background(), r
		},
		"already expired": func() (context.Context, Request) {
			r := sampleReq
			r.Expires = time.Now().Add(-time.Second)
			return context.Background(), r
		},
	}
	for name, setup := range tests {
		t.Run(name, func(t *testing.T) {
			a, _, _ := newTestTerminal(t, time.Minute)
			ctx, req := setup()
			if r := await(t, approveAsync(a, ctx, req)); r.a != TimedOut || r.err == nil {
				t.Fatalf("got %v, %v; want TimedOut", r.a, r.err)
			}
		})
	}
}

func TestTerminalIgnoresALineTypedBetweenPrompts(t *testing.T) {
	a, pw, scr := newTestTerminal(t, 50*time.Millisecond)
	if r := await(t, approveAsync(a, context.Background(), sampleReq)); r.a != TimedOut {
		t.Fatalf("first prompt: %v", r.a)
	}
	// A late "y" for the first call, typed while no question is shown:
	// the reader left running by the first prompt picks it up.
	io.WriteString(pw, "y\n")

	a2 := a.(*terminal)
	a2.timeout = 5 * time.Second
	ch := approveAsync(a, context.Background(), sampleReq)
	scr.waitFor(t, "[y/N] ", 2)
	io.WriteString(pw, "n\n")
	if r := await(t, ch); r.a != Denied || r.err != nil {
		t.Fatalf("second prompt: got %v, %v; the stale y must not approve it", r.a, r.err)
	}
}

func TestTerminalShowsOnePromptAtATime(t *testing.T) {
	a, pw, scr := newTestTerminal(t, 5*time.Second)
	first := approveAsync(a, context.Background(), sampleReq)
	scr.waitFor(t, "[y/N] ", 1)

	// A second request waits for the terminal and gives up with its
	// context, without printing anything.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if r := await(t, approveAsync(a, ctx, sampleReq)); r.a != TimedOut || r.err == nil {
		t.Fatalf("queued request: got %v, %v; want TimedOut", r.a, r.err)
	}
	if n := strings.Count(scr.String(), "approval required"); n != 1 {
		t.Fatalf("%d prompts on screen while one was open", n)
	}

	// A third one queues and is asked after the first is answered.
	third := approveAsync(a, context.Background(), sampleReq)
	io.WriteString(pw, "y\n")
	if r := await(t, first); r.a != Approved {
		t.Fatalf("first: %v, %v", r.a, r.err)
	}
	scr.waitFor(t, "[y/N] ", 2)
	io.WriteString(pw, "n\n")
	if r := await(t, third); r.a != Denied {
		t.Fatalf("third: %v, %v", r.a, r.err)
	}
}

func TestTerminalDeniesWhenInputIsClosed(t *testing.T) {
	a, pw, scr := newTestTerminal(t, 5*time.Second)
	ch := approveAsync(a, context.Background(), sampleReq)
	scr.waitFor(t, "[y/N] ", 1)
	pw.Close()
	if r := await(t, ch); r.a != Denied || r.err == nil {
		t.Fatalf("got %v, %v; want Denied with an error", r.a, r.err)
	}
}

func TestTerminalDeniesWhenThePromptCannotBeWritten(t *testing.T) {
	pr, _ := io.Pipe()
	a, err := Terminal(TerminalOptions{In: pr, Out: failWriter{}})
	if err != nil {
		t.Fatal(err)
	}
	if an, err := a.Approve(context.Background(), sampleReq); an != Denied || err == nil {
		t.Fatalf("got %v, %v", an, err)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

func TestTerminalOptionErrors(t *testing.T) {
	pr, _ := io.Pipe()
	tests := map[string]TerminalOptions{
		"missing device": {Path: "/nonexistent/tty"},
		"In without Out": {In: pr},
		"Out without In": {Out: io.Discard},
	}
	for name, opts := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := Terminal(opts); err == nil || !strings.HasPrefix(err.Error(), "approve: ") {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestSanitize(t *testing.T) {
	tests := map[string]struct {
		in   string
		max  int
		want string
	}{
		"plain":         {"read_file /tmp", 100, "read_file /tmp"},
		"unicode text":  {"日本語 🔑", 100, "日本語 🔑"},
		"backslash":     {`a\b`, 100, `a\\b`},
		"esc and bell":  {"\x1b[0m\x07", 100, `\x1b[0m\x07`},
		"newline, tab":  {"a\nb\tc", 100, `a\x0ab\x09c`},
		"del and c1":    {"\x7f\u0085", 100, `\x7f\x85`},
		"bidi":          {"\u202e\u2066", 100, `\u{202e}\u{2066}`},
		"invalid utf-8": {"a\xffb", 100, `a\xffb`},
		"truncated":     {"abcdef", 3, "abc… (3 more bytes)"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := sanitize(tc.in, tc.max); got != tc.want {
				t.Fatalf("sanitize(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func FuzzSanitize(f *testing.F) {
	f.Add("\x1b[2J\u202e\xff", 16)
	f.Fuzz(func(t *testing.T, s string, max int) {
		if max < 0 || max > 1<<16 {
			return
		}
		out := sanitize(s, max)
		if !utf8.ValidString(out) {
			t.Fatalf("invalid UTF-8 in %q", out)
		}
		for _, r := range out {
			if r != ' ' && (!unicode.IsGraphic(r) || unicode.Is(unicode.Cf, r)) {
				t.Fatalf("unsafe rune %U in %q", r, out)
			}
		}
		if len(out) > max+4+len("… ( more bytes)")+20 {
			t.Fatalf("output of %d bytes exceeds the cap %d", len(out), max)
		}
	})
}
