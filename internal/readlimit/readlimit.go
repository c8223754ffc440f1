// Package readlimit reads input that has a size limit (key files, JWKS
// documents, AgentCards, trust bundles) without reading more than one byte
// beyond the limit, so that an oversized or endless input (/dev/zero, a
// hostile server) costs no more memory than the limit.
package readlimit

import (
	"fmt"
	"io"
	"os"
)

// TooLargeError is the error for input over the limit.
type TooLargeError struct{ Max int64 }

func (e *TooLargeError) Error() string { return fmt.Sprintf("more than %d bytes", e.Max) }

// ReadAll reads r to EOF. More than max bytes is a *TooLargeError.
func ReadAll(r io.Reader, max int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		clear(data)
		return nil, &TooLargeError{Max: max}
	}
	return data, nil
}

// ReadFile is ReadAll of the file at path; the size error names the file
// as os errors do ("read PATH: more than N bytes").
func ReadFile(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := ReadAll(f, max)
	if err != nil {
		return nil, &os.PathError{Op: "read", Path: path, Err: err}
	}
	return data, nil
}
