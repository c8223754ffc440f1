package proxy

import (
	"io"
	"sync"
)

// lineWriter serializes whole lines onto one peer: both read loops and
// approval goroutines write to the client.
type lineWriter struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
	err error
}

// writeLine sends line followed by a newline in a single write, so a reader
// never sees a partial message. A nil line sends nothing.
func (lw *lineWriter) writeLine(line []byte) error {
	if line == nil {
		return nil
	}
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if lw.err != nil {
		return lw.err
	}
	lw.buf = append(append(lw.buf[:0], line...), '\n')
	_, lw.err = lw.w.Write(lw.buf)
	if cap(lw.buf) > 1<<20 {
		lw.buf = nil // do not pin one huge message's buffer forever
	}
	return lw.err
}
