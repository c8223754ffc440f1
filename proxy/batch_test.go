package proxy

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/agentid/agentid/approve"
	"github.com/agentid/agentid/audit"
)

// writeRecorder keeps every Write call separately.
type writeRecorder struct {
	mu     sync.Mutex
	writes []string
	closed func()
}

func (w *writeRecorder) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes = append(w.writes, string(p))
	return len(p), nil
}

func (w *writeRecorder) Close() error {
	if w.closed != nil {
		w.closed()
	}
	return nil
}

func (w *writeRecorder) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.writes...)
}

func TestLinesThatArriveTogetherAreRecordedAndForwardedWithOneWriteEach(t *testing.T) {
	var calls []string
	for i := 1; i <= 3; i++ {
		calls = append(calls, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"echo","arguments":{"n":%d}}}`, i, i))
	}
	log := &writeRecorder{}
	fromServerR, fromServerW := io.Pipe()
	toServer := &writeRecorder{closed: func() { fromServerW.Close() }}
	px := New(Config{Core: mustCore(t, basicPolicy), Audit: audit.New(log)})
	in := strings.NewReader(strings.Join(calls, "\n") + "\n")
	if err := px.Relay(context.Background(), in, io.Discard, toServer, fromServerR); err != nil {
		t.Fatal(err)
	}
	if w := log.all(); len(w) != 1 || strings.Count(w[0], "\n") != 3 {
		t.Errorf("audit writes = %q, want one write of the three decisions' records", w)
	}
	if w := toServer.all(); len(w) != 1 || w[0] != strings.Join(calls, "\n")+"\n" {
		t.Errorf("server writes = %q, want one write of the three lines as sent", w)
	}
}

func TestNoLineOfABatchWhoseRecordsCannotBeWrittenIsForwarded(t *testing.T) {
	disk := &brokenDisk{broken: true}
	h := startHarness(t, Config{Core: mustCore(t, basicPolicy), Audit: audit.New(disk)}, nil)
	var lines strings.Builder
	for i := 1; i <= 3; i++ {
		fmt.Fprintf(&lines, `{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"echo","arguments":{}}}`+"\n", i)
	}
	if _, err := h.toProxy.Write([]byte(lines.String())); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		m := h.recv()
		if errCode(m) != -32603 || m["id"] != float64(i) || !strings.Contains(fmt.Sprint(m), "audit log unavailable") {
			t.Fatalf("answer %d = %v, want -32603 audit log unavailable for id %d", i, m, i)
		}
	}
	if got := h.server.lines(); len(got) != 0 {
		t.Fatalf("lines reached the server: %q", got)
	}
}

// The relay reads without copying lines (jsonrpc.Reader.ReadShared); a call
// held for an approval must reach the server as sent however much traffic
// the reader's buffer carries meanwhile.
func TestACallHeldForApprovalIsForwardedIntactAfterMuchOtherTraffic(t *testing.T) {
	release := make(chan approve.Answer)
	h := startHarness(t, Config{Core: mustCore(t, basicPolicy),
		Approver: approve.Func(func(ctx context.Context, r approve.Request) (approve.Answer, error) {
			return <-release, nil
		})}, nil)
	held := `{"jsonrpc":"2.0","id":"held","method":"tools/call","params":{"name":"write_file","arguments":{"path":"/tmp/x","content":"` +
		strings.Repeat("held-", 20) + `"}}}`
	h.send(held)
	for i := range 2000 { // some 250 KB, several times the reader's buffer
		h.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"echo","arguments":{"text":"%s"}}}`, i, strings.Repeat("x", 64)))
		if m := h.recv(); m["id"] != float64(i) || m["error"] != nil {
			t.Fatalf("call %d: %v", i, m)
		}
	}
	release <- approve.Approved
	if m := h.recv(); m["id"] != "held" || m["error"] != nil {
		t.Fatalf("approved call: %v", m)
	}
	got := h.server.lines()
	if len(got) != 2001 || got[len(got)-1] != held {
		t.Fatalf("the server received %d lines, the last %.200q; want 2001, the last the approved call as sent, %.200q", len(got), got[len(got)-1], held)
	}
}
