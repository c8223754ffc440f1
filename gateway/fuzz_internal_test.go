package gateway

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/agentid/agentid/jsonrpc"
)

// FuzzSSEReader: whatever an upstream streams, the reader ends (no event
// over the limit, no endless line), and an event written back out by
// appendEvent reads back with the same data and id.
func FuzzSSEReader(f *testing.F) {
	for _, s := range []string{
		"data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n",
		"id: 7\nevent: message\ndata: a\ndata: b\n\n",
		": keep-alive\n\nretry: 100\n\n",
		"data: x\r\n\r\n",
		"data:" + string(bytes.Repeat([]byte("y"), 300)) + "\n\n",
		"id: a\x00b\ndata: z\n\n",
		"data: unterminated",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		const max = 256
		rd := newSSEReader(bytes.NewReader(in), max)
		for i := 0; i < len(in)+1; i++ {
			ev, err := rd.next()
			var tooLarge *errEventTooLarge
			if errors.As(err, &tooLarge) {
				if len(tooLarge.head) > headSize {
					t.Fatalf("head of %d bytes", len(tooLarge.head))
				}
				continue
			}
			if err != nil {
				return
			}
			if len(ev.Data) > max {
				t.Fatalf("event of %d bytes over the limit %d", len(ev.Data), max)
			}
			out := appendEvent(nil, ev, ev.Data)
			back, err := newSSEReader(bytes.NewReader(out), max+len(out)).next()
			if errors.Is(err, io.EOF) && len(bytes.Trim(ev.Data, "\r")) == 0 && !ev.HasID && ev.Retry == "" {
				continue // data of line ends only: nothing to pass on
			}
			if err != nil {
				t.Fatalf("re-reading %q: %v", out, err)
			}
			// A data line ending in \r loses it on the way out (a line end).
			if !bytes.Equal(bytes.ReplaceAll(back.Data, []byte("\r"), nil), bytes.ReplaceAll(ev.Data, []byte("\r"), nil)) || back.ID != ev.ID {
				t.Fatalf("event %+v came back as %+v", ev, back)
			}
		}
		if _, err := rd.next(); !errors.Is(err, io.EOF) && err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			var tooLarge *errEventTooLarge
			if !errors.As(err, &tooLarge) {
				t.Fatalf("after the end: %v", err)
			}
		}
	})
}

// FuzzHeaderMismatch: the check never panics on any body and headers, and
// never passes an Mcp-Name that differs from a well-formed body's tool.
func FuzzHeaderMismatch(f *testing.F) {
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}`), "tools/call", "echo", "2026-07-28")
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///x"}}`), "resources/read", "=?base64?ZmlsZTovLy94?=", "")
	f.Add([]byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`), "", "", "2026-07-28")
	f.Fuzz(func(t *testing.T, body []byte, method, name, version string) {
		h := http.Header{}
		if method != "" {
			h.Set("Mcp-Method", method)
		}
		if name != "" {
			h.Set("Mcp-Name", name)
		}
		if version != "" {
			h.Set("Mcp-Protocol-Version", version)
		}
		if msg, err := jsonrpc.Decode(body); err == nil {
			headerMismatch(h, msg)
		}
	})
}
