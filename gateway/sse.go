package gateway

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"sync"
)

// event is one event of a text/event-stream (the SSE format of the MCP
// Streamable HTTP transport): its data is one JSON-RPC message, or empty
// for an event that only sets the stream's resumption point.
type event struct {
	ID    string
	HasID bool
	Name  string // the event type; "" means "message"
	Retry string
	Data  []byte
}

// errEventTooLarge is an event whose data exceeds the reader's limit; the
// event has been skipped, and head holds its first bytes.
type errEventTooLarge struct{ head []byte }

func (e *errEventTooLarge) Error() string { return "gateway: event exceeds the size limit" }

// sseReader reads events from a stream, each bounded in size. Lines end
// in "\n", "\r\n" or a lone "\r", as the SSE standard says and as every
// client reads them: a reader that took a lone "\r" for data would pass on
// a field that its client splits into a data line of its own, a message
// the core never saw.
type sseReader struct {
	r   *bufio.Reader
	max int
	// lines holds the rest of a line that lone CRs split.
	lines [][]byte
	// body counts the bytes read from the stream.
	body countingReader
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func newSSEReader(r io.Reader, max int) *sseReader {
	s := &sseReader{max: max, body: countingReader{r: r}}
	s.r = sseBuffers.Get().(*bufio.Reader)
	s.r.Reset(&s.body)
	return s
}

// drained reports whether a stream of size bytes (-1: not announced) has
// been read and returned to its end, so that the next event is io.EOF at
// once: an upstream that answers a POST with one event of known length.
func (s *sseReader) drained(size int64) bool {
	return size >= 0 && s.body.n == size && s.r.Buffered() == 0 && len(s.lines) == 0
}

// sseBuffers are the readers' buffers: a stream answering one POST would
// otherwise allocate (and clear) 64 KB for an event of a few hundred bytes.
var sseBuffers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 64<<10) }}

// release returns the reader's buffer to the pool; the reader must not be
// used again. The events it returned do not refer to the buffer.
func (s *sseReader) release() {
	if s.r != nil {
		s.r.Reset(nil)
		sseBuffers.Put(s.r)
		s.r = nil
	}
}

// headSize is how much of an oversized event's data is kept, enough to
// show the id of the JSON-RPC message it carries.
const headSize = 4 << 10

// next returns the next event with data or an id; io.EOF at the end of
// the stream (an event not terminated by a blank line is discarded, as
// the SSE standard says).
func (s *sseReader) next() (event, error) {
	var ev event
	var data bytes.Buffer
	started, dataLines, tooLarge := false, 0, false
	var head []byte
	for {
		line, err := s.readLine()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return event{}, io.EOF
			}
			return event{}, err
		}
		if len(line) == 0 {
			if !started || data.Len() == 0 && !tooLarge && !ev.HasID && ev.Retry == "" {
				// Nothing to pass on: no data, no resumption point.
				ev, started = event{}, false
				continue
			}
			if tooLarge {
				return event{}, &errEventTooLarge{head: head}
			}
			ev.Data = data.Bytes()
			return ev, nil
		}
		if line[0] == ':' {
			continue // a comment (keep-alive)
		}
		started = true
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "data":
			if tooLarge {
				continue
			}
			if data.Len()+len(value)+1 > s.max {
				tooLarge = true
				head = append(append(head, data.Bytes()...), value...)
				if len(head) > headSize {
					head = head[:headSize]
				}
				data.Reset()
				continue
			}
			if dataLines > 0 {
				data.WriteByte('\n')
			}
			data.Write(value)
			dataLines++
		case "id":
			if !bytes.ContainsRune(value, 0) {
				ev.ID, ev.HasID = string(value), true
			}
		case "event":
			ev.Name = string(value)
		case "retry":
			ev.Retry = string(value)
		}
	}
}

// maxFieldLine bounds one line that is not data (an id, an event type):
// those are short, and a stream of one endless line must not grow memory.
const maxFieldLine = 64 << 10

// readLine returns the next line without its end. A data line may be as
// long as the event limit; it is read in pieces.
func (s *sseReader) readLine() ([]byte, error) {
	if len(s.lines) > 0 {
		line := s.lines[0]
		s.lines = s.lines[1:]
		return line, nil
	}
	line, err := s.readLF()
	if err != nil || bytes.IndexByte(line, '\r') < 0 {
		return line, err
	}
	parts := bytes.Split(line, []byte("\r"))
	s.lines = parts[1:]
	return parts[0], nil
}

// readLF reads up to the next "\n", without it and without a "\r" before
// it. A line that the buffer holds whole is returned in place, valid until
// the next read (next copies what it keeps); a longer one is gathered.
func (s *sseReader) readLF() ([]byte, error) {
	var buf []byte
	for {
		chunk, err := s.r.ReadSlice('\n')
		if err == nil && buf == nil {
			buf = chunk
			break
		}
		buf = append(buf, chunk...)
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			// Only a data line may be long.
			if len(buf) > s.max+maxFieldLine || len(buf) > maxFieldLine && !bytes.HasPrefix(buf, []byte("data")) {
				return nil, errors.New("gateway: event stream line exceeds the size limit")
			}
			continue
		}
		if len(buf) > 0 && errors.Is(err, io.EOF) {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	buf = buf[:len(buf)-1]
	if n := len(buf); n > 0 && buf[n-1] == '\r' {
		buf = buf[:n-1]
	}
	return buf, nil
}

// appendEvent appends ev, with data in place of ev.Data, in the wire form.
// A message with line breaks (pretty-printed JSON) becomes several data
// lines, which a reader joins back with "\n".
func appendEvent(b []byte, ev event, data []byte) []byte {
	// A field holding a line end would end the line there for the client:
	// never written (the reader splits lines, so none arrives here).
	field := func(name, v string) {
		if v != "" && !strings.ContainsAny(v, "\r\n") {
			b = append(append(append(append(b, name...), ": "...), v...), '\n')
		}
	}
	if ev.HasID && ev.ID == "" {
		b = append(b, "id\n"...)
	}
	field("id", ev.ID)
	field("event", ev.Name)
	field("retry", ev.Retry)
	if len(data) > 0 && bytes.IndexByte(data, '\n') < 0 && bytes.IndexByte(data, '\r') < 0 {
		// One line, as every message the core passes is: found by two
		// vectorized searches rather than a look at each of its bytes.
		b = append(append(append(b, "data: "...), data...), '\n')
	} else if len(data) > 0 {
		// Every line end a client would see ("\r\n", "\r", "\n") ends a
		// data line; the client joins them back with "\n".
		start := 0
		for i := 0; i <= len(data); i++ {
			if i < len(data) && data[i] != '\n' && data[i] != '\r' {
				continue
			}
			b = append(append(append(b, "data: "...), data[start:i]...), '\n')
			if i < len(data)-1 && data[i] == '\r' && data[i+1] == '\n' {
				i++
			}
			start = i + 1
		}
	}
	return append(b, '\n')
}
