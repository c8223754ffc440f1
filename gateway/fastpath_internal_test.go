package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/agentid/agentid/jsonrpc"
)

// The head of a body over the limit is at most what was read, whatever
// the limit (it was cut at 4 KB, past the end of a shorter body).
func TestReadBodyKeepsTheHeadOfAnOversizedBody(t *testing.T) {
	for _, max := range []int{10, headSize, 3 * headSize} {
		body := strings.Repeat("x", max+1)
		b, over, err := readBody(strings.NewReader(body), max)
		if err != nil || !over || len(b) != min(headSize, max+1) {
			t.Fatalf("max %d: %d bytes, over %v, %v", max, len(b), over, err)
		}
	}
}

// FuzzRequestTarget: the name of a tools/call that the header check reads
// without parsing the params again is the one encoding/json reads from them,
// and the check fails for the same bodies.
func FuzzRequestTarget(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"\u0065cho","arguments":{"a":1}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"r\u00e9sum\u00e9 \ud83d\ude00","arguments":null}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":[1]}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","_meta":"x"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"Name":"echo"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":7}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","name":"b"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":[]}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call"}`,
		`{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"greet"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		msg, err := jsonrpc.Decode(body)
		if err != nil || msg.Kind != jsonrpc.KindRequest {
			return
		}
		member, named := namedMethods[msg.Method]
		if !named {
			return
		}
		got, ok := requestTarget(msg, member)
		var params map[string]json.RawMessage
		var want string
		wantOK := json.Unmarshal(msg.Params, &params) == nil && json.Unmarshal(params[member], &want) == nil
		if ok != wantOK || got != want {
			t.Fatalf("%s: read %q %v, encoding/json reads %q %v", body, got, ok, want, wantOK)
		}
	})
}

// An upstream answer is read the same whether or not its length is
// announced, and whether or not the announced length holds (a reader that
// is not net/http's may go past it): never more than the limit and one
// byte.
func TestReadResponseAgreesWithReadBody(t *testing.T) {
	for _, tc := range []struct {
		body string
		max  int
	}{
		{"", 100},
		{`{"jsonrpc":"2.0","id":1,"result":{}}`, 100},
		{strings.Repeat("x", 100), 100},
		{strings.Repeat("x", 101), 100},
		{strings.Repeat("y", 3*headSize), 2 * headSize},
	} {
		for _, length := range []int64{int64(len(tc.body)), -1, int64(len(tc.body) / 2)} {
			resp := &http.Response{Body: io.NopCloser(strings.NewReader(tc.body)), ContentLength: length}
			got, gotOver, err := readResponse(resp, tc.max)
			want, wantOver, _ := readBody(strings.NewReader(tc.body), tc.max)
			if err != nil || gotOver != wantOver || !bytes.Equal(got, want) {
				t.Fatalf("%d bytes (Content-Length %d, max %d): %d bytes over=%v err=%v; readBody: %d bytes over=%v",
					len(tc.body), length, tc.max, len(got), gotOver, err, len(want), wantOver)
			}
			if length == int64(len(tc.body)) && length > 0 && cap(got) != len(tc.body)+1 && !gotOver {
				t.Fatalf("%d bytes read into a buffer of %d", len(got), cap(got))
			}
		}
	}
}

// A stream's reader, once released, leaves nothing of its stream to the
// next one that gets its buffer, and the events it returned stay intact.
func TestSSEReaderBufferReuse(t *testing.T) {
	a := newSSEReader(strings.NewReader("data: first\n\ndata: left"), 1<<10)
	ev, err := a.next()
	if err != nil || string(ev.Data) != "first" {
		t.Fatalf("first stream: %q %v", ev.Data, err)
	}
	a.release()
	a.release() // twice is harmless
	for i := 0; i < 10; i++ {
		b := newSSEReader(strings.NewReader("id: 2\ndata: second\n\n"), 1<<10)
		got, err := b.next()
		if err != nil || string(got.Data) != "second" || got.ID != "2" {
			t.Fatalf("second stream: %+v %v", got, err)
		}
		if _, err := b.next(); !errors.Is(err, io.EOF) {
			t.Fatalf("second stream after its event: %v", err)
		}
		b.release()
	}
	if string(ev.Data) != "first" {
		t.Fatalf("an event of the first stream became %q", ev.Data)
	}
}

// A stream of announced length is drained only once its last event has
// been returned and nothing is left to read; a stream of unknown length
// never is.
func TestSSEReaderDrained(t *testing.T) {
	const stream = "data: 1\n\ndata: 2\r\rdata: 3\n\n"
	rd := newSSEReader(strings.NewReader(stream), 1<<10)
	defer rd.release()
	for i, want := range []bool{false, false, true} {
		if _, err := rd.next(); err != nil {
			t.Fatalf("event %d: %v", i+1, err)
		}
		if got := rd.drained(int64(len(stream))); got != want {
			t.Fatalf("after event %d: drained %v, want %v", i+1, got, want)
		}
		if rd.drained(-1) {
			t.Fatalf("after event %d: a stream of unknown length drained", i+1)
		}
	}
	if _, err := rd.next(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last event: %v", err)
	}
}

// A message is written as one data line when it holds no line end, and as
// one data line per line otherwise, whichever line ends it uses.
func TestAppendEventWritesOneDataLinePerLine(t *testing.T) {
	for _, tc := range []struct{ data, want string }{
		{`{"jsonrpc":"2.0","id":1,"result":{}}`, "id: 7\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n"},
		{"a\nb", "id: 7\ndata: a\ndata: b\n\n"},
		{"a\r\nb\rc", "id: 7\ndata: a\ndata: b\ndata: c\n\n"},
		{"a\n", "id: 7\ndata: a\ndata: \n\n"},
		{"", "id: 7\n\n"},
	} {
		if got := string(appendEvent(nil, event{ID: "7", HasID: true}, []byte(tc.data))); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.data, got, tc.want)
		}
	}
}
