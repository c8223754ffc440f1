package gateway

import (
	"bufio"
	"bytes"
	"errors"
	"io"
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
// in "\n" or "\r\n"; a lone "\r" is not a line end here (no MCP server
// sends one, and treating it as data is the safe reading for JSON).
type sseReader struct {
	r   *bufio.Reader
	max int
}

func newSSEReader(r io.Reader, max int) *sseReader {
	return &sseReader{r: bufio.NewReaderSize(r, 64<<10), max: max}
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
	var buf []byte
	for {
		chunk, err := s.r.ReadSlice('\n')
		buf = append(buf, chunk...)
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			if len(buf) > s.max+maxFieldLine {
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
	if ev.HasID {
		b = append(append(append(b, "id: "...), ev.ID...), '\n')
	}
	if ev.Name != "" {
		b = append(append(append(b, "event: "...), ev.Name...), '\n')
	}
	if ev.Retry != "" {
		b = append(append(append(b, "retry: "...), ev.Retry...), '\n')
	}
	if len(data) > 0 {
		for _, line := range bytes.Split(data, []byte("\n")) {
			line = bytes.TrimSuffix(line, []byte("\r"))
			b = append(append(append(b, "data: "...), line...), '\n')
		}
	}
	return append(b, '\n')
}
