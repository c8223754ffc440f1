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
	err error
}

// write sends lines, each ending with a newline, in a single write, so a
// reader never sees a partial message. Nothing is sent for no lines.
func (lw *lineWriter) write(lines []byte) error {
	if len(lines) == 0 {
		return nil
	}
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if lw.err != nil {
		return lw.err
	}
	_, lw.err = lw.w.Write(lines)
	return lw.err
}
