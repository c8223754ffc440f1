package jsonrpc

import (
	"bytes"
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
//
// It buffers its input itself rather than with bufio, so that ReadShared can
// return lines without copying them: the memory of a line returned by
// ReadShared is reused only after Reuse, and never after Keep.
type Reader struct {
	src     io.Reader
	maxLine int
	size    int // the buffer size to start with and to come back to

	// buf[start:end] is read and not yet returned; buf[start:scanned] is
	// known to hold no "\n".
	buf                 []byte
	start, scanned, end int
	// lent says buf[:start] holds lines returned by ReadShared that the
	// caller may still use: buf is then never written below end again.
	lent bool
	err  error // sticky read error, returned once pending lines are out
	head []byte
}

// headSize is how much of a line refused as too long Head keeps: enough for
// the envelope members that come first in every peer's output.
const headSize = 64 << 10

// maxKeptBuffer is the largest buffer Reuse keeps: one huge message must not
// pin its memory for the life of the Reader.
const maxKeptBuffer = 1 << 20

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
	return &Reader{src: r, maxLine: maxLine, size: bufSize, buf: make([]byte, bufSize)}
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
	line, err := r.next()
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), line...), nil
}

// ReadShared is ReadLine without the copy: the line is a slice of the
// Reader's buffer (with its capacity capped, so that appending to it cannot
// overwrite what follows). Its bytes stay as they are until the caller calls
// Reuse, and for good after Keep; reading on does not overwrite them.
//
// A relay that carries out each message before the next Reuse thus reads
// without allocating.
func (r *Reader) ReadShared() ([]byte, error) {
	line, err := r.next()
	if err != nil {
		return nil, err
	}
	r.lent = true
	return line, nil
}

// Reuse tells the Reader that no line ReadShared returned so far is in use
// any longer: their memory may hold the lines read next.
func (r *Reader) Reuse() {
	if !r.lent {
		return
	}
	r.lent = false
	if len(r.buf) > maxKeptBuffer && r.end-r.start <= r.size/2 {
		r.moveTo(make([]byte, r.size))
	}
}

// Keep tells the Reader that the lines ReadShared returned so far must stay
// valid for good (a message held for an approval, say): the Reader goes on in
// a new buffer and never reuses theirs, which the garbage collector frees once
// they are no longer referenced.
func (r *Reader) Keep() {
	if !r.lent {
		return
	}
	r.moveTo(make([]byte, max(r.size, 2*(r.end-r.start))))
	r.lent = false
}

// Buffered reports whether the next ReadLine or ReadShared returns without
// reading, because a whole line that is not blank is buffered. A caller can
// use it to handle the messages that arrived together as one batch.
func (r *Reader) Buffered() bool {
	for {
		i := bytes.IndexByte(r.buf[r.scanned:r.end], '\n')
		if i < 0 {
			r.scanned = r.end
			return false
		}
		nl := r.scanned + i
		if !blank(r.buf[r.start:nl]) {
			r.scanned = nl // the next read finds this line's end at once
			return true
		}
		r.start, r.scanned = nl+1, nl+1 // a blank line is skipped anyway
	}
}

// next returns the next line that is not blank, as a slice of buf.
func (r *Reader) next() ([]byte, error) {
	tooLong := false // the line being read is over the cap and discarded
	r.head = r.head[:0]
	emptyReads := 0
	for {
		if i := bytes.IndexByte(r.buf[r.scanned:r.end], '\n'); i >= 0 {
			nl := r.scanned + i
			line := r.buf[r.start:nl]
			r.start, r.scanned = nl+1, nl+1
			if tooLong {
				r.keepHead(line)
				return nil, ErrLineTooLong
			}
			if line = r.trim(line); line != nil {
				return line, nil
			}
			if len(r.head) > 0 {
				return nil, ErrLineTooLong
			}
			continue // blank
		}
		r.scanned = r.end
		if r.err != nil {
			pending := r.buf[r.start:r.end]
			r.start, r.scanned = r.end, r.end
			if r.err != io.EOF || len(pending) == 0 && !tooLong {
				return nil, r.err // a partial line before another error is dropped
			}
			if tooLong {
				r.keepHead(pending)
				return nil, ErrLineTooLong
			}
			if line := r.trim(pending); line != nil {
				return line, nil
			}
			if len(r.head) > 0 {
				return nil, ErrLineTooLong
			}
			return nil, io.EOF
		}
		// The cap allows one extra byte: a "\r" that more input may reveal
		// to be part of the terminator.
		if !tooLong && r.end-r.start > r.maxLine+1 {
			tooLong = true
		}
		if tooLong {
			r.keepHead(r.buf[r.start:r.end])
			r.start = r.end
		}
		n := r.fill()
		if n > 0 {
			emptyReads = 0
		} else if emptyReads++; emptyReads >= 100 && r.err == nil {
			r.err = io.ErrNoProgress
		}
	}
}

// trim strips the "\r" of a CRLF terminator and checks the cap. It returns
// nil for a blank line, and for a line over the cap, which it keeps in head.
func (r *Reader) trim(line []byte) []byte {
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if len(line) > r.maxLine {
		r.keepHead(line)
		return nil
	}
	if blank(line) {
		return nil
	}
	return line[:len(line):len(line)]
}

// fill reads once into the free end of buf, making room first: a line
// longer than half the buffer moves to a buffer twice as large; otherwise
// the pending bytes move to the front of buf when no line returned by
// ReadShared lives there, and to a new buffer of the initial size when one
// does.
func (r *Reader) fill() int {
	if r.end == len(r.buf) {
		switch pending := r.end - r.start; {
		case pending >= len(r.buf)/2:
			r.moveTo(make([]byte, 2*len(r.buf)))
			r.lent = false
		case r.lent:
			r.moveTo(make([]byte, max(r.size, 2*pending)))
			r.lent = false
		default:
			r.moveTo(r.buf)
		}
	}
	n, err := r.src.Read(r.buf[r.end:])
	if n < 0 || n > len(r.buf)-r.end {
		n, err = 0, errors.New("jsonrpc: reader returned an invalid count")
	}
	r.end += n
	if err != nil {
		r.err = err
	}
	return n
}

// moveTo moves the pending bytes to the front of b and makes b the buffer.
func (r *Reader) moveTo(b []byte) {
	n := copy(b, r.buf[r.start:r.end])
	r.scanned -= r.start
	r.buf, r.start, r.end = b, 0, n
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
