package proxy

import (
	"bytes"
	"io"
	"sync"

	"github.com/agentid/agentid/dlp"
)

// maxStderrLine bounds how much of one stderr line is held back for
// scanning; a longer line is scanned and written in pieces, each time
// keeping back a tail (dlp.Scanner.RedactHead) so that a secret straddling
// two pieces is still redacted whole.
const maxStderrLine = 64 << 10

// StderrFilter returns a writer that redacts the MCP server's stderr line by
// line with the response-scope DLP patterns (`dlp.filter_stderr`) before
// passing it to w. Close flushes a final unterminated line.
func StderrFilter(w io.Writer, s *dlp.Scanner) io.WriteCloser {
	return &stderrFilter{w: w, s: s}
}

type stderrFilter struct {
	mu  sync.Mutex
	w   io.Writer
	s   *dlp.Scanner
	buf []byte
}

func (f *stderrFilter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			f.buf = append(f.buf, p...)
			if len(f.buf) >= maxStderrLine {
				if err := f.flushHead(); err != nil {
					return n, err
				}
			}
			break
		}
		f.buf = append(f.buf, p[:i+1]...)
		p = p[i+1:]
		if err := f.flush(); err != nil {
			return n, err
		}
	}
	return n, nil
}

func (f *stderrFilter) flush() error {
	if len(f.buf) == 0 {
		return nil
	}
	out, _ := f.s.RedactString(dlp.Response, string(f.buf))
	f.buf = f.buf[:0]
	_, err := io.WriteString(f.w, out)
	return err
}

// flushHead writes the redacted head of a long unterminated line and keeps
// its tail for the next write.
func (f *stderrFilter) flushHead() error {
	head, k := f.s.RedactHead(dlp.Response, f.buf)
	_, err := f.w.Write(head)
	f.buf = append(f.buf[:0], f.buf[k:]...)
	return err
}

func (f *stderrFilter) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.flush()
}
