package gateway

import (
	"io"
	"net/http"
)

// readResponse reads an upstream response body as readBody does, into a
// buffer of the size its Content-Length announces when that is within max:
// io.ReadAll would grow a 4 KB answer from 512 bytes, copying it four times.
// The client's transport stops a body at its Content-Length (and reports a
// shorter one as an error), so the buffer never grows.
func readResponse(resp *http.Response, max int) (body []byte, over bool, err error) {
	return readSized(resp.Body, resp.ContentLength, max)
}

// readSized is readBody for a body whose length n is announced (-1 when
// not): a client request's body too has its Content-Length, and net/http
// stops it there.
func readSized(body io.Reader, n int64, max int) ([]byte, bool, error) {
	if n <= 0 || n > int64(max) {
		return readBody(body, max)
	}
	b := make([]byte, 0, n+1) // one byte more, to read the end without growing
	// At most max+1 bytes are read: one past the limit says it is over.
	for len(b) <= max {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		m, err := body.Read(b[len(b):min(cap(b), max+1)])
		b = b[:len(b)+m]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, false, err
		}
	}
	if len(b) > max {
		return b[:min(headSize, len(b))], true, nil
	}
	return b, false, nil
}
