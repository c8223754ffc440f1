package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentid/agentid/aip"
	"github.com/agentid/agentid/internal/testenv"
)

var ts = time.Date(2026, 1, 24, 10, 30, 45, 123456789, time.FixedZone("CET", 3600))

func base() Record {
	return Record{Timestamp: ts, Direction: aip.Upstream, Decision: aip.AuditBlock, PolicyMode: aip.ModeEnforce}
}

func logOne(t *testing.T, r Record) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := New(&buf).Log(r); err != nil {
		t.Fatalf("Log: %v", err)
	}
	return buf.Bytes()
}

// decodeLine checks that b is exactly one JSON object on one line and
// returns it decoded.
func decodeLine(t *testing.T, b []byte) map[string]any {
	t.Helper()
	if !bytes.HasSuffix(b, []byte("\n")) || bytes.Count(b, []byte("\n")) != 1 {
		t.Fatalf("record is not a single line: %q", b)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("record is not valid JSON: %v\n%s", err, b)
	}
	return m
}

func TestEveryRecordHasTheFiveRequiredFields(t *testing.T) {
	records := map[string]Record{
		"minimal allow": {Direction: aip.Upstream, Decision: aip.AuditAllow, PolicyMode: aip.ModeEnforce},
		"method blocked": {Direction: aip.Upstream, Decision: aip.AuditBlock, PolicyMode: aip.ModeEnforce, Violation: true,
			Event: "METHOD_BLOCKED", Method: "resources/read", Code: -32006},
		"dlp downstream": {Direction: aip.Downstream, Decision: aip.AuditAllowMonitor, PolicyMode: aip.ModeMonitor, Violation: true,
			Event: "DLP_TRIGGERED", DLPRule: "aws_key", DLPMatchCount: 2},
		"token issued": {Direction: aip.Upstream, Decision: aip.AuditAllow, PolicyMode: aip.ModeEnforce, Event: "TOKEN_ISSUED",
			SessionID: "s", TokenID: "n", Extra: map[string]any{"expires_at": ts}},
		"rate limited": {Direction: aip.Upstream, Decision: aip.AuditRateLimited, PolicyMode: aip.ModeMonitor, Violation: true},
	}
	for name, r := range records {
		t.Run(name, func(t *testing.T) {
			m := decodeLine(t, logOne(t, r))
			for _, k := range []string{"timestamp", "direction", "decision", "policy_mode", "violation"} {
				if _, ok := m[k]; !ok {
					t.Errorf("missing required field %q in %v", k, m)
				}
			}
			for _, k := range []string{"time", "level", "msg"} {
				if _, ok := m[k]; ok {
					t.Errorf("slog key %q present", k)
				}
			}
		})
	}
}

func TestRequiredFieldsComeFirstInSpecOrder(t *testing.T) {
	r := base()
	r.Tool = "delete_file"
	r.Extra = map[string]any{"aaa": 1}
	got := string(logOne(t, r))
	want := `{"timestamp":"2026-01-24T09:30:45.123Z","direction":"upstream","decision":"BLOCK","policy_mode":"enforce","violation":false,"tool":"delete_file","aaa":1}` + "\n"
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestAllFieldsAreWrittenWithTheirKeys(t *testing.T) {
	fwd := false
	r := Record{
		Timestamp: ts, Direction: aip.Downstream, Decision: aip.AuditAllowMonitor, PolicyMode: aip.ModeMonitor, Violation: true,
		Event: "DLP_TRIGGERED", Method: "tools/call", Tool: "t",
		Args:      json.RawMessage("{\n  \"path\": \"/etc/passwd\"\n}"),
		FailedArg: "path", FailedRule: "^/home/.*", Reason: "r", Code: -32001,
		ID: json.RawMessage(`7`), SessionID: "sid", TokenID: "tid", PolicyHash: "ph",
		DLPRule: "rule", DLPAction: "redact", DLPMatchCount: 3, Forwarded: &fwd, FailureReason: "fr",
		Extra: map[string]any{"z": "last", "b": true, "raw": json.RawMessage(`[1, 2]`), "obj": map[string]int{"k": 1}},
	}
	got := string(logOne(t, r))
	want := `{"timestamp":"2026-01-24T09:30:45.123Z","direction":"downstream","decision":"ALLOW_MONITOR","policy_mode":"monitor","violation":true,` +
		`"event":"DLP_TRIGGERED","method":"tools/call","tool":"t","args":{"path":"/etc/passwd"},"failed_arg":"path","failed_rule":"^/home/.*",` +
		`"reason":"r","code":-32001,"id":7,"session_id":"sid","token_id":"tid","policy_hash":"ph","dlp_rule":"rule","dlp_action":"redact",` +
		`"dlp_match_count":3,"forwarded":false,"failure_reason":"fr","b":true,"obj":{"k":1},"raw":[1,2],"z":"last"}` + "\n"
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestInvalidRecordsAreRefusedAndNothingIsWritten(t *testing.T) {
	tests := map[string]func(*Record){
		"empty direction":          func(r *Record) { r.Direction = "" },
		"unknown direction":        func(r *Record) { r.Direction = "sideways" },
		"empty decision":           func(r *Record) { r.Decision = "" },
		"lowercase decision":       func(r *Record) { r.Decision = "block" },
		"empty policy mode":        func(r *Record) { r.PolicyMode = "" },
		"extra shadows decision":   func(r *Record) { r.Extra = map[string]any{"decision": "ALLOW"} },
		"extra uses slog time key": func(r *Record) { r.Extra = map[string]any{"time": 1} },
		"extra empty key":          func(r *Record) { r.Extra = map[string]any{"": 1} },
		"extra unencodable value":  func(r *Record) { r.Extra = map[string]any{"c": make(chan int)} },
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			r := base()
			mutate(&r)
			var buf bytes.Buffer
			if err := New(&buf).Log(r); err == nil || !strings.HasPrefix(err.Error(), "audit: ") {
				t.Fatalf("Log error = %v, want an audit: error", err)
			}
			if buf.Len() != 0 {
				t.Fatalf("wrote %q for an invalid record", buf.Bytes())
			}
		})
	}
}

func TestZeroTimestampIsSetToNowInUTCWithMilliseconds(t *testing.T) {
	before := time.Now().Add(-time.Second)
	r := base()
	r.Timestamp = time.Time{}
	m := decodeLine(t, logOne(t, r))
	s := m["timestamp"].(string)
	if len(s) != len("2026-01-24T10:30:45.123Z") || !strings.HasSuffix(s, "Z") {
		t.Fatalf("timestamp %q is not RFC 3339 UTC with milliseconds", s)
	}
	got, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || got.Before(before) || got.After(time.Now().Add(time.Second)) {
		t.Fatalf("timestamp %q (%v) is not now", s, err)
	}
}

func TestArgsThatAreNotValidJSONAreWrittenAsAString(t *testing.T) {
	tests := map[string]struct {
		args json.RawMessage
		want any
	}{
		"truncated object":    {json.RawMessage(`{"a":`), `{"a":`},
		"line break injected": {json.RawMessage("x\n{\"decision\":\"ALLOW\"}"), "x\n{\"decision\":\"ALLOW\"}"},
		"invalid utf-8":       {json.RawMessage("\"\xff\""), "\"\ufffd\""},
		"valid string":        {json.RawMessage(`"ok"`), "ok"},
		"valid number":        {json.RawMessage(` 12 `), float64(12)},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := base()
			r.Args = tc.args
			m := decodeLine(t, logOne(t, r))
			if m["args"] != tc.want {
				t.Fatalf("args = %#v, want %#v", m["args"], tc.want)
			}
			if m["decision"] != aip.AuditBlock {
				t.Fatalf("decision was overridden: %v", m["decision"])
			}
		})
	}
}

func TestValidatedArgsAreCompactedLikeAnyOther(t *testing.T) {
	for _, in := range []string{
		"{\n  \"path\": \"/etc/passwd\",\n  \"n\" : [ 1, 2 ]\n}",
		`{"a":"x  y\n\" \\","b":{ }}`,
		` "s p" `, `12`, `[ true , null ]`,
	} {
		var want bytes.Buffer
		if err := json.Compact(&want, []byte(in)); err != nil {
			t.Fatalf("test bug: %q: %v", in, err)
		}
		for _, validated := range []bool{false, true} {
			r := base()
			r.Args, r.ID, r.Validated = json.RawMessage(in), json.RawMessage(`"id 1"`), validated
			line := string(logOne(t, r))
			if !strings.Contains(line, `,"args":`+want.String()+`,`) || !strings.Contains(line, `"id":"id 1"`) {
				t.Errorf("validated=%v: %q: line %s, want args %s", validated, in, line, want.String())
			}
		}
	}
}

var hostile = []string{
	"",
	`"`, `\`, `\"`, `"},"decision":"ALLOW","x":{"`,
	"line\nbreak", "cr\rlf\r\n", "tab\t", "nul\x00byte",
	"\x1b[2J\x1b[31mred", "del\x7f", "c1 csi \u009b31m",
	"ls\u2028ps\u2029", "bidi \u202eevil\u202c \u2066x\u2069",
	"invalid \xff\xfe utf8", "truncated \xe2\x82", "surrogate \xed\xa0\x80",
	"emoji 🔑 and 日本語", "<script>&amp;</script>",
	string([]byte{0xc0, 0x80}), // overlong NUL
}

func TestHostileStringsRoundTripThroughEncodingJSON(t *testing.T) {
	for _, s := range hostile {
		t.Run(fmt.Sprintf("%q", s), func(t *testing.T) {
			r := base()
			r.Tool, r.Reason, r.SessionID = s, s, s
			r.Extra = map[string]any{"x": s}
			line := logOne(t, r)
			if bytes.ContainsAny(line[:len(line)-1], "\n\r\x1b\x7f\u009b\u2028\u202e\u2066") {
				t.Fatalf("raw control or bidi character in output: %q", line)
			}
			m := decodeLine(t, line)
			// Each invalid byte becomes one U+FFFD, as in a []rune conversion.
			want := string([]rune(s))
			for _, k := range []string{"tool", "reason", "session_id", "x"} {
				got := m[k]
				if s == "" && k != "x" {
					if got != nil {
						t.Errorf("%s: empty string written: %q", k, got)
					}
					continue
				}
				if got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			if m["decision"] != aip.AuditBlock || len(m) != 9-boolToInt(s == "")*3 {
				t.Fatalf("fields were injected: %v", m)
			}
		})
	}
}

func boolToInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestConcurrentLoggingProducesIntactLines(t *testing.T) {
	const goroutines, perG = 50, 20
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range perG {
				r := base()
				r.Tool = fmt.Sprintf("tool-%d-%d", g, i)
				r.Args = json.RawMessage(`{"blob":"` + strings.Repeat("x", 5000) + `"}`)
				if err := l.Log(r); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	seen := map[string]bool{}
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %d is not intact JSON: %v", len(seen)+1, err)
		}
		seen[m["tool"].(string)] = true
	}
	if len(seen) != goroutines*perG {
		t.Fatalf("got %d distinct lines, want %d", len(seen), goroutines*perG)
	}
}

func TestOpenCreatesTheFileWithMode0600(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Fatalf("mode = %#o, want 0600", perm)
	}
	if l.Path() != path {
		t.Fatalf("Path() = %q", l.Path())
	}
}

func TestOpenAppendsToAnExistingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	if err := os.WriteFile(path, []byte("old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Log(base()); err != nil {
		t.Fatal(err)
	}
	l.Close()
	b, _ := os.ReadFile(path)
	if !bytes.HasPrefix(b, []byte("old\n{")) {
		t.Fatalf("file = %q", b)
	}
}

func TestOpenRefusesGroupOrWorldWritableFiles(t *testing.T) {
	for _, mode := range []os.FileMode{0o620, 0o602, 0o666} {
		t.Run(mode.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.jsonl")
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, mode); err != nil {
				t.Fatal(err)
			}
			if l, err := Open(path); err == nil {
				l.Close()
				t.Fatalf("Open accepted a file with mode %v", mode)
			}
		})
	}
}

func TestOpenRefusesStandardOutput(t *testing.T) {
	for _, p := range []string{"-", "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1", "/dev/./stdout", ""} {
		t.Run(p, func(t *testing.T) {
			if l, err := Open(p); err == nil {
				l.Close()
				t.Fatalf("Open(%q) succeeded", p)
			}
		})
	}
}

func TestOpenRefusesAPathThatIsTheSameFileAsStdout(t *testing.T) {
	dir := t.TempDir()
	stdoutFile := filepath.Join(dir, "stdout")
	f, err := os.OpenFile(stdoutFile, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	saved := os.Stdout
	os.Stdout = f
	defer func() { os.Stdout = saved }()

	link := filepath.Join(dir, "link")
	if err := os.Symlink(stdoutFile, link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{stdoutFile, link} {
		if l, err := Open(p); err == nil {
			l.Close()
			t.Fatalf("Open(%q) accepted stdout", p)
		}
	}
}

func TestLogAfterCloseFails(t *testing.T) {
	l, err := Open(filepath.Join(t.TempDir(), "a.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Log(base()); err == nil {
		t.Fatal("Log after Close succeeded")
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestDiscardAndNilLoggerWriteNothingButValidate(t *testing.T) {
	var nilLogger *Logger
	for name, l := range map[string]*Logger{"Discard": Discard(), "nil": nilLogger} {
		t.Run(name, func(t *testing.T) {
			if err := l.Log(base()); err != nil {
				t.Fatal(err)
			}
			if err := l.Log(Record{}); err == nil {
				t.Fatal("invalid record accepted")
			}
			if l.Path() != "" || l.Close() != nil {
				t.Fatal("Path/Close")
			}
		})
	}
}

func TestNewDoesNotCloseTheWriter(t *testing.T) {
	w := &closeRecorder{}
	l := New(w)
	l.Close()
	if w.closed {
		t.Fatal("Close closed the caller's writer")
	}
	if l.Path() != "" {
		t.Fatal("Path of New logger is not empty")
	}
}

type closeRecorder struct {
	bytes.Buffer
	closed bool
}

func (c *closeRecorder) Close() error { c.closed = true; return nil }

func TestWriteErrorsAreReturned(t *testing.T) {
	l := New(errWriter{})
	if err := l.Log(base()); err == nil || !strings.HasPrefix(err.Error(), "audit: ") {
		t.Fatalf("err = %v", err)
	}
}

type errWriter struct{}

func (errWriter) Write([]byte) (int, error) { return 0, io.ErrShortWrite }

func TestEachRecordIsOneWriteCall(t *testing.T) {
	w := &countWriter{}
	l := New(w)
	r := base()
	r.Args = json.RawMessage(`{"a":"` + strings.Repeat("y", 100000) + `"}`)
	for range 3 {
		if err := l.Log(r); err != nil {
			t.Fatal(err)
		}
	}
	if w.n != 3 {
		t.Fatalf("%d writes for 3 records", w.n)
	}
}

type countWriter struct{ n int }

func (c *countWriter) Write(p []byte) (int, error) { c.n++; return len(p), nil }

func BenchmarkLog(b *testing.B) {
	l := New(io.Discard)
	fwd := true
	r := Record{
		Timestamp: ts, Direction: aip.Upstream, Decision: aip.AuditAllow, PolicyMode: aip.ModeEnforce,
		Method: "tools/call", Tool: "read_file", Args: json.RawMessage(`{"path":"/home/user/notes.txt","limit":100}`),
		ID: json.RawMessage(`42`), SessionID: "550e8400-e29b-41d4-a716-446655440000", TokenID: "abc123def456",
		PolicyHash: "a3c7f2e8d9b4f1e2c8a7d6f3e9b2c4f1a8e7d3c2b5f4e9a7c3d8f2b6e1a9c4f7", Forwarded: &fwd,
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := l.Log(r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLog4KBArguments logs a tools/call decision with about 4 KB of
// arguments, which the log validates.
func BenchmarkLog4KBArguments(b *testing.B) { benchLog4KB(b, false) }

// BenchmarkLog4KBValidatedArguments is BenchmarkLog4KBArguments for
// arguments jsonrpc validated, as the proxy logs them.
func BenchmarkLog4KBValidatedArguments(b *testing.B) { benchLog4KB(b, true) }

func benchLog4KB(b *testing.B, validated bool) {
	l := New(io.Discard)
	args := testenv.ToolArguments(4096)
	r := Record{
		Timestamp: ts, Direction: aip.Upstream, Decision: aip.AuditAllow, PolicyMode: aip.ModeEnforce,
		Method: "tools/call", Tool: "write_file", Args: json.RawMessage(args), ID: json.RawMessage(`42`),
		PolicyHash: "a3c7f2e8d9b4f1e2c8a7d6f3e9b2c4f1a8e7d3c2b5f4e9a7c3d8f2b6e1a9c4f7", Validated: validated,
	}
	b.SetBytes(int64(len(args)))
	b.ReportAllocs()
	for b.Loop() {
		if err := l.Log(r); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzLog(f *testing.F) {
	f.Add(uint8(0), "tool", `{"a":1}`, "reason", "x", "k")
	f.Add(uint8(7), "\x1b[31m\n", "{\n\"a\":\n1}", "\xff\u2028", `"},"decision":"ALLOW`, "decision")
	f.Fuzz(func(t *testing.T, sel uint8, s1, args, s2, s3, key string) {
		dirs := []string{aip.Upstream, aip.Downstream}
		decs := []string{aip.AuditAllow, aip.AuditBlock, aip.AuditAllowMonitor, aip.AuditRateLimited}
		modes := []string{aip.ModeEnforce, aip.ModeMonitor}
		fwd := sel&1 == 1
		r := Record{
			Timestamp: time.Unix(int64(sel)*1e6, 0), Direction: dirs[sel%2], Decision: decs[sel/2%4],
			PolicyMode: modes[sel/8%2], Violation: sel&16 != 0,
			Event: s1, Method: s2, Tool: s3, Args: json.RawMessage(args), ID: json.RawMessage(s1),
			FailedArg: s2, FailedRule: s3, Reason: s1, Code: int(sel), SessionID: s2, TokenID: s3,
			PolicyHash: s1, DLPRule: s2, DLPAction: s3, DLPMatchCount: int(sel), Forwarded: &fwd,
			FailureReason: s1,
			Extra:         map[string]any{key: s2},
		}
		var buf bytes.Buffer
		err := New(&buf).Log(r)
		if reservedKeys[key] || key == "" {
			if err == nil || buf.Len() != 0 {
				t.Fatalf("reserved extra key %q accepted", key)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		line := buf.Bytes()
		if bytes.IndexByte(line, '\n') != len(line)-1 {
			t.Fatalf("not one line: %q", line)
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("invalid JSON %v: %q", err, line)
		}
		if m["decision"] != r.Decision || m["direction"] != r.Direction || m["policy_mode"] != r.PolicyMode || m["violation"] != r.Violation {
			t.Fatalf("required fields altered: %q", line)
		}
	})
}

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }

func TestLogAllWritesADecisionsRecordsInOneWrite(t *testing.T) {
	var writes int
	var buf strings.Builder
	l := New(writerFunc(func(p []byte) (int, error) { writes++; return buf.Write(p) }))
	recs := []Record{
		{Direction: aip.Upstream, Decision: aip.AuditBlock, PolicyMode: aip.ModeEnforce, Event: "A"},
		{Direction: aip.Upstream, Decision: aip.AuditAllow, PolicyMode: aip.ModeEnforce, Event: "B"},
	}
	if err := l.LogAll(recs); err != nil {
		t.Fatal(err)
	}
	if writes != 1 || strings.Count(buf.String(), "\n") != 2 {
		t.Fatalf("%d writes for %q, want one write of two lines", writes, buf.String())
	}
}

func TestLogAllWritesNothingWhenOneRecordIsInvalid(t *testing.T) {
	var buf strings.Builder
	l := New(&buf)
	err := l.LogAll([]Record{
		{Direction: aip.Upstream, Decision: aip.AuditAllow, PolicyMode: aip.ModeEnforce},
		{Direction: "sideways", Decision: aip.AuditAllow, PolicyMode: aip.ModeEnforce},
	})
	if err == nil || buf.Len() != 0 {
		t.Fatalf("err %v, wrote %q; want an error and nothing written", err, buf.String())
	}
}

func TestStatusReportsWriteFailures(t *testing.T) {
	l := New(failingWriter{errors.New("disk full")})
	if st := l.Status(); st.Failures != 0 || st.LastError != "" {
		t.Fatalf("fresh logger status %+v", st)
	}
	rec := Record{Direction: aip.Upstream, Decision: aip.AuditAllow, PolicyMode: aip.ModeEnforce}
	if err := l.Log(rec); err == nil {
		t.Fatal("a failed write returned no error")
	}
	_ = l.Log(rec)
	st := l.Status()
	if st.Failures != 2 || !strings.Contains(st.LastError, "disk full") || st.LastFailure.IsZero() {
		t.Fatalf("status %+v, want 2 failures naming the cause", st)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestWriteBatchWritesSeveralDecisionsInOneWrite(t *testing.T) {
	var writes int
	var buf strings.Builder
	l := New(writerFunc(func(p []byte) (int, error) { writes++; return buf.Write(p) }))
	rec := func(event string) Record {
		return Record{Direction: aip.Upstream, Decision: aip.AuditAllow, PolicyMode: aip.ModeEnforce, Event: event}
	}
	var b Batch
	for _, d := range [][]Record{{rec("A"), rec("B")}, {rec("C")}} {
		if err := b.Add(d); err != nil {
			t.Fatal(err)
		}
	}
	if writes != 0 {
		t.Fatal("Add wrote to the log")
	}
	if err := l.WriteBatch(&b); err != nil {
		t.Fatal(err)
	}
	if writes != 1 || strings.Count(buf.String(), "\n") != 3 {
		t.Fatalf("%d writes for %q, want one write of three lines", writes, buf.String())
	}
	for i, ev := range []string{"A", "B", "C"} {
		if got := decodeLine(t, []byte(strings.SplitAfter(buf.String(), "\n")[i]))["event"]; got != ev {
			t.Errorf("line %d has event %v, want %s", i, got, ev)
		}
	}
	if b.Len() != 0 {
		t.Error("WriteBatch left the batch full")
	}
	if err := l.WriteBatch(&b); err != nil || writes != 1 {
		t.Errorf("an empty batch: err %v, %d writes; want nothing written", err, writes)
	}
}

func TestBatchAddRefusesAnInvalidDecisionAlone(t *testing.T) {
	var buf strings.Builder
	l := New(&buf)
	var b Batch
	ok := Record{Direction: aip.Upstream, Decision: aip.AuditAllow, PolicyMode: aip.ModeEnforce, Event: "OK"}
	bad := Record{Direction: "sideways", Decision: aip.AuditAllow, PolicyMode: aip.ModeEnforce, Event: "BAD"}
	if err := b.Add([]Record{ok}); err != nil {
		t.Fatal(err)
	}
	if err := b.Add([]Record{ok, bad}); err == nil {
		t.Fatal("a decision with an invalid record was added")
	}
	if err := b.Add([]Record{{Direction: aip.Upstream, Decision: aip.AuditAllow, PolicyMode: aip.ModeEnforce,
		Extra: map[string]any{"bad": func() {}}}}); err == nil {
		t.Fatal("a decision whose record cannot be encoded was added")
	}
	if err := l.WriteBatch(&b); err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); strings.Count(got, "\n") != 1 || !strings.Contains(got, `"OK"`) {
		t.Fatalf("wrote %q, want only the valid decision's record", got)
	}
}

func TestWriteBatchFailuresAreReturnedAndCounted(t *testing.T) {
	l := New(failingWriter{errors.New("disk full")})
	var b Batch
	if err := b.Add([]Record{{Direction: aip.Upstream, Decision: aip.AuditAllow, PolicyMode: aip.ModeEnforce}}); err != nil {
		t.Fatal(err)
	}
	if err := l.WriteBatch(&b); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("err = %v, want the write error", err)
	}
	if st := l.Status(); st.Failures != 1 {
		t.Errorf("status %+v, want one failure", st)
	}
	closed := New(io.Discard)
	closed.Close()
	if err := b.Add([]Record{{Direction: aip.Upstream, Decision: aip.AuditAllow, PolicyMode: aip.ModeEnforce}}); err != nil {
		t.Fatal(err)
	}
	if err := closed.WriteBatch(&b); err == nil {
		t.Error("WriteBatch after Close succeeded")
	}
}

// A record's timestamp is written as time.Time.AppendFormat writes the
// layout, for every kind of instant: any zone, leap days, the ends of the
// range of four-digit years and beyond them.
func TestTimestampsAreWrittenInTheLayout(t *testing.T) {
	east := time.FixedZone("east", 5*3600+30*60)
	for _, tc := range []time.Time{
		time.Date(2026, 1, 24, 10, 30, 45, 123456789, time.UTC),
		time.Date(2024, 2, 29, 23, 59, 59, 999999999, time.UTC),
		time.Date(2026, 12, 31, 23, 59, 59, 999999999, east),
		time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999000000, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(-1, 6, 15, 12, 0, 0, 5000000, time.UTC),
		time.Unix(0, 0),
		{},
	} {
		want := tc.UTC().AppendFormat(nil, timeLayout)
		if got := appendTime(nil, tc); string(got) != string(want) {
			t.Errorf("%v: %s, want %s", tc, got, want)
		}
	}
	for i := int64(0); i < 10000; i++ {
		tc := time.Unix(0, i*7919*1e12+i*104729)
		if got, want := appendTime(nil, tc), tc.UTC().AppendFormat(nil, timeLayout); string(got) != string(want) {
			t.Fatalf("%v: %s, want %s", tc, got, want)
		}
	}
}

// gateWriter holds its first Write until release is closed, and fails the
// writes whose number is in fail (counting from 1).
type gateWriter struct {
	mu      sync.Mutex
	started chan struct{}
	release chan struct{}
	writes  [][]byte
	fail    map[int]bool
}

func (g *gateWriter) Write(p []byte) (int, error) {
	g.mu.Lock()
	g.writes = append(g.writes, bytes.Clone(p))
	n := len(g.writes)
	g.mu.Unlock()
	if n == 1 {
		close(g.started)
		<-g.release
	}
	if g.fail[n] {
		return 0, io.ErrShortWrite
	}
	return len(p), nil
}

// startGroup has one caller's write held by the writer while others
// queue behind it, and returns their results once the write is let go.
func startGroup(t *testing.T, l *Logger, w *gateWriter, others int) (first error, rest []error) {
	t.Helper()
	firstDone := make(chan error, 1)
	go func() {
		r := base()
		r.Tool = "first"
		firstDone <- l.Log(r)
	}()
	<-w.started
	results := make(chan error, others)
	for i := range others {
		go func() {
			r := base()
			r.Tool = fmt.Sprintf("queued-%d", i)
			results <- l.Log(r)
		}()
	}
	// The queued callers have joined the group once they all wait.
	for deadline := time.Now().Add(time.Minute); ; {
		l.mu.Lock()
		n := len(l.waiters)
		l.mu.Unlock()
		if n == others {
			break
		}
		if time.Now().After(deadline) {
			close(w.release)
			t.Fatalf("%d of %d callers queued behind a write under way", n, others)
		}
		runtime.Gosched()
	}
	close(w.release)
	first = <-firstDone
	for range others {
		rest = append(rest, <-results)
	}
	return first, rest
}

func TestCallersQueuedBehindAWriteShareTheNextOne(t *testing.T) {
	w := &gateWriter{started: make(chan struct{}), release: make(chan struct{})}
	first, rest := startGroup(t, New(w), w, 8)
	if first != nil {
		t.Fatal(first)
	}
	for _, err := range rest {
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(w.writes) != 2 {
		t.Fatalf("%d writes for 1 + 8 callers, want the held one and one for the group", len(w.writes))
	}
	lines := strings.Split(strings.TrimSuffix(string(w.writes[1]), "\n"), "\n")
	seen := map[string]bool{}
	for _, line := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("group write holds a broken line %q: %v", line, err)
		}
		seen[m["tool"].(string)] = true
	}
	if len(lines) != 8 || len(seen) != 8 {
		t.Fatalf("group write holds %d lines (%d distinct), want the 8 queued records", len(lines), len(seen))
	}
}

func TestAFailedGroupWriteFailsEveryCallerInIt(t *testing.T) {
	w := &gateWriter{started: make(chan struct{}), release: make(chan struct{}), fail: map[int]bool{2: true}}
	l := New(w)
	first, rest := startGroup(t, l, w, 5)
	if first != nil {
		t.Fatalf("the held write succeeded, yet its caller got %v", first)
	}
	for i, err := range rest {
		if err == nil || !strings.HasPrefix(err.Error(), "audit: write") {
			t.Fatalf("queued caller %d: err = %v, want the group's write error", i, err)
		}
	}
	if st := l.Status(); st.Failures != 5 {
		t.Fatalf("Status().Failures = %d, want the 5 batches of the failed write", st.Failures)
	}
}

func TestCloseWaitsForTheWriteUnderWay(t *testing.T) {
	w := &gateWriter{started: make(chan struct{}), release: make(chan struct{})}
	l := New(w)
	logged := make(chan error, 1)
	go func() { logged <- l.Log(base()) }()
	<-w.started
	closed := make(chan error, 1)
	go func() { closed <- l.Close() }()
	select {
	case <-closed:
		t.Fatal("Close returned while a write was under way")
	case <-time.After(50 * time.Millisecond):
	}
	close(w.release)
	if err := <-logged; err != nil {
		t.Fatal(err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if err := l.Log(base()); err == nil {
		t.Fatal("Log after Close succeeded")
	}
}
