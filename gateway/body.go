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
	n := resp.ContentLength
	if n <= 0 || n > int64(max) {
		return readBody(resp.Body, max)
	}
	r := io.LimitReader(resp.Body, int64(max)+1)
	b := make([]byte, 0, n+1) // one byte more, to read the end without growing
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		m, err := r.Read(b[len(b):cap(b)])
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
