package identity

import (
	"fmt"
	"strconv"

	"github.com/agentid/agentid/internal/strictjson"
)

// JOSE headers and JWT claims are read under strictjson.JOSE: RFC 8259 with
// valid UTF-8 and no unpaired surrogate escapes, no duplicate or
// case-variant names at any depth, no integer beyond 2^53 and no number
// beyond the double range (go-jose and JavaScript's jose read numbers as
// doubles, so such a number would mean one thing to us and another to
// them), and at most 64 levels of nesting.
var profile = strictjson.JOSE

// errNotStrict marks a document the profile refuses, or that is not JSON at
// all: the callers answer with their own reason, whatever the scanner found.
type errNotStrict struct{ err error }

func (e errNotStrict) Error() string { return e.err.Error() }
func (e errNotStrict) Unwrap() error { return e.err }

// reader validates a JOSE document and extracts its members in the same
// pass. Type errors are recorded, the first in document order, and the
// reading goes on to the end, so that a document that is not strict JSON
// is reported as such even when a mistyped or forbidden member comes
// before the problem, as when the whole document was checked first.
type reader struct {
	s *strictjson.Scanner
	// doc is the whole document as one string: a value without escapes is
	// a substring of it, so reading the claims allocates once for all of
	// them.
	doc string
	err error
}

func newReader(data []byte) reader {
	return reader{s: strictjson.NewScanner(profile, data), doc: string(data)}
}

// failf records the first error.
func (r *reader) failf(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, args...)
	}
}

// fail records the first error.
func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

// object reads the opening brace of an object; false when the next value
// is not one (which is recorded), or at a syntax error (which finish
// reports).
func (r *reader) object() bool {
	t, err := r.s.Next()
	if err != nil {
		return false
	}
	if t.Kind != strictjson.Object {
		r.failf("not a JSON object")
		return false
	}
	return true
}

// keys yields the decoded name of each member of the object that the last
// read opened, valid until the next read; the loop body must read the
// member's value. It ends at the end of the object, or at a syntax error
// (which finish reports).
func (r *reader) keys(yield func(key []byte) bool) {
	for {
		t, err := r.s.Next()
		if err != nil || t.Kind != strictjson.Key || !yield(r.s.Text(t)) {
			return
		}
	}
}

// value reads the next value whole; at a syntax error it is the zero Token.
func (r *reader) value() strictjson.Token {
	t, _ := r.s.Skip()
	return t
}

// member finds key in names and returns its index, or -1. When names[i]
// is a string member (strs[i] is not nil) it reads the value into *strs[i];
// otherwise the caller reads the value of a known member, and member reads
// that of an unknown one. A name that differs from one of names only in
// letter case is refused: encoding/json, which a consumer in Go may decode
// the claims with, would read {"NBF":1} as the nbf claim that this
// decoder, go-jose and JavaScript's jose do not see. (Two such names in one
// object are already refused by the profile.) Error messages name the
// member prefix+names[i].
func (r *reader) member(key []byte, names []string, strs []*string, prefix string) int {
	for i, n := range names {
		if string(key) == n {
			if strs[i] != nil {
				*strs[i] = r.str(r.value(), prefix, n)
			}
			return i
		}
	}
	for _, n := range names {
		if strictjson.EqualFold(key, []byte(n)) {
			r.failf("claim %q differs from %s%s only in letter case", clip(string(key)), prefix, n)
			break
		}
	}
	r.value()
	return -1
}

// str returns the text of t, which must be a string, for member
// prefix+name (given apart, so that the name is put together only for an
// error).
func (r *reader) str(t strictjson.Token, prefix, name string) string {
	switch {
	case t.Kind == strictjson.None:
		return ""
	case t.Kind != strictjson.String:
		r.failf("claim %s%s must be a string", prefix, name)
		return ""
	case !t.Escaped():
		return r.doc[t.Start+1 : t.End-1]
	}
	return string(r.s.Text(t))
}

// int returns the value of t, which must be an integer (no fraction or
// exponent) within int64, for member name.
func (r *reader) int(t strictjson.Token, name string) int64 {
	if t.Kind == strictjson.None {
		return 0
	}
	if !t.Integer() {
		r.failf("claim %s must be an integer", name)
		return 0
	}
	n, err := strconv.ParseInt(r.doc[t.Start:t.End], 10, 64)
	if err != nil {
		r.failf("claim %s is out of range", name)
	}
	return n
}

// skipOpened reads the rest of the array or object that the last read
// opened.
func (r *reader) skipOpened() {
	for d := r.s.Depth(); r.s.Depth() >= d; {
		if _, err := r.s.Next(); err != nil {
			return
		}
	}
}

// finish reads the rest of the document and releases the scanner. The
// error is an errNotStrict when the document is not strict JSON, else the
// first recorded error.
func (r *reader) finish() error {
	err := r.s.Finish()
	r.s.Release()
	r.s = nil
	if err != nil {
		return errNotStrict{err}
	}
	return r.err
}
