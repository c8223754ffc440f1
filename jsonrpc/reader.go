package jsonrpc

import (
	"bufio"
	"errors"
	"io"
)

// DefaultMaxLineSize is the line size cap that NewReader applies when asked
// for none. The Go MCP SDK uses the same limit.
const DefaultMaxLineSize = 16 << 20

// ErrLineTooLong is returned by Reader.ReadLine for a line longer than the
// cap. The line has been discarded and the next call reads the line after it.
var ErrLineTooLong = errors.New("jsonrpc: line too long")

// Reader reads newline-delimited messages with a size cap. A Reader is not
// safe for concurrent use.
type Reader struct {
	br      *bufio.Reader
	maxLine int
	err     error // sticky read error, returned once pending lines are out
	head    []byte
}

// headSize is how much of a line refused as too long Head keeps: enough for
// the envelope members that come first in every peer's output.
const headSize = 64 << 10

// Head returns the beginning (up to 64 KiB) of the line the last
// ErrLineTooLong refused, so that the caller can find its id and answer it
// (IDFromHead). It is valid until the next ReadLine.
func (r *Reader) Head() []byte { return r.head }

// NewReader returns a Reader that reads lines of at most maxLine bytes (not
// counting the line terminator) from r. A maxLine of zero or less means
// DefaultMaxLineSize.
func NewReader(r io.Reader, maxLine int) *Reader {
	return newReaderSize(r, maxLine, 64<<10)
}

func newReaderSize(r io.Reader, maxLine, bufSize int) *Reader {
	if maxLine <= 0 {
		maxLine = DefaultMaxLineSize
	}
	return &Reader{br: bufio.NewReaderSize(r, bufSize), maxLine: maxLine}
}

// ReadLine returns the next line without its trailing "\n" and without one
// "\r" before it, so CRLF input works. Lines that are empty or hold only
// spaces, tabs and carriage returns are skipped.
//
// The returned slice is newly allocated and belongs to the caller: a proxy
// may hold a message (for an approval, say) while it reads on.
//
// A line longer than the cap is read to its end and discarded, and ReadLine
// returns ErrLineTooLong; the caller can answer it and call ReadLine again.
// At the end of the input, a final line without a "\n" is returned as a line,
// and the next call returns io.EOF. Any other read error is returned as is,
// dropping a partial line.
func (r *Reader) ReadLine() ([]byte, error) {
	for {
		line, err := r.readRaw()
		if err != nil {
			return nil, err
		}
		if line == nil {
			continue // blank
		}
		return line, nil
	}
}

// readRaw reads one line. It returns nil, nil for a blank line.
func (r *Reader) readRaw() ([]byte, error) {
	if r.err != nil {
		return nil, r.err
	}
	var long []byte // the line so far, once it outgrows the bufio buffer
	tooLong := false
	r.head = r.head[:0]
	for {
		frag, err := r.br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// The cap allows one extra byte: a "\r" that the next fragment
			// may reveal to be part of the terminator.
			if !tooLong && len(long)+len(frag) > r.maxLine+1 {
				tooLong = true
				r.keepHead(long)
				long = nil
			}
			if tooLong {
				r.keepHead(frag)
			}
			if !tooLong {
				long = append(long, frag...)
			}
			continue
		}
		if err != nil && err != io.EOF {
			r.err = err
			return nil, err
		}
		if err == io.EOF {
			r.err = io.EOF
			if len(frag) == 0 && len(long) == 0 && !tooLong {
				return nil, io.EOF
			}
		}
		if tooLong {
			r.keepHead(frag)
			return nil, ErrLineTooLong
		}
		var line []byte
		if long == nil {
			line = frag
		} else {
			line = append(long, frag...)
		}
		if n := len(line); n > 0 && line[n-1] == '\n' {
			line = line[:n-1]
		}
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if len(line) > r.maxLine {
			r.keepHead(line)
			return nil, ErrLineTooLong
		}
		if blank(line) {
			return nil, nil
		}
		if long == nil {
			line = append([]byte(nil), line...) // frag is bufio's buffer
		}
		return line, nil
	}
}

func (r *Reader) keepHead(b []byte) {
	if room := headSize - len(r.head); room > 0 {
		r.head = append(r.head, b[:min(room, len(b))]...)
	}
}

func blank(line []byte) bool {
	for _, c := range line {
		if c != ' ' && c != '\t' && c != '\r' {
			return false
		}
	}
	return true
}
