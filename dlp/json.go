package dlp

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/agentid/agentid/internal/jsonstr"
)

// Result is the outcome of RedactJSON.
type Result struct {
	// Data is the JSON with redactions applied. When nothing matched it is
	// the input slice itself.
	Data json.RawMessage
	// Changed reports whether Data differs from the input.
	Changed bool
	// Findings lists each matching pattern once, in policy order.
	Findings []Finding
	// Truncated reports that the input exceeded max_scan_size, so only the
	// string values that begin within the first MaxScanSize bytes were
	// scanned, and of a string that crosses the limit only the part before
	// it. The caller logs the warning §3.6.3 requires.
	Truncated bool
}

// RedactJSON redacts every string and number value of a JSON document, at
// any depth, with the patterns whose scope covers dir. For responses the
// caller passes the whole "result" or "error" member; for requests
// "params.arguments". Object keys are never changed. Only the literals that
// changed are rewritten (strings re-encoded without HTML escaping); every
// other byte of raw is kept, so fields, key order, the spelling of the
// other numbers and whitespace survive.
//
// A number is scanned as it is written (for example "-4111111111111111.0").
// When a pattern matches any part of it, the whole number is replaced by the
// string "[REDACTED:<name>]", named after the first listed pattern that
// matched: the value changes type, which a consumer is more likely to notice
// than a leak.
//
// Input that is not a single valid JSON value is an error, and the caller
// must then withhold the message: what cannot be parsed cannot be shown to
// be free of secrets. A disabled scanner returns raw unchanged without
// looking at it.
func (s *Scanner) RedactJSON(dir Direction, raw json.RawMessage) (Result, error) {
	res := Result{Data: raw}
	pats := s.patternsFor(dir)
	if len(pats) == 0 {
		return res, nil
	}
	limit := len(raw)
	if limit > s.maxScan {
		limit, res.Truncated = s.maxScan, true
	}
	st := getState(len(s.patterns))
	defer putState(st)

	var out []byte
	copied := 0
	w := walker{in: raw, stack: st.stackBuf()}
	for {
		start, end, kind, err := w.next()
		if err != nil {
			return Result{}, err
		}
		if start < 0 {
			break
		}
		if start >= limit {
			continue // still walked, so invalid JSON past the limit is caught
		}
		if kind == tokNumber {
			// A number is scanned as written. A detector that matches any
			// part of it replaces the whole literal with a marker string:
			// what is left of a number around a marker is not a number.
			s.collect(pats, raw[start:min(end, limit)], st)
			if len(st.spans) == 0 {
				continue
			}
			if out == nil {
				out = make([]byte, 0, len(raw)+len(raw)/8)
			}
			out = append(out, raw[copied:start]...)
			first := st.spans[0].pat
			for _, sp := range st.spans[1:] {
				first = min(first, sp.pat)
			}
			st.red = s.appendMarker(st.red[:0], first)
			out = appendQuote(out, st.red)
			copied = end
			continue
		}
		body := raw[start+1 : end-1]
		rawCut := limit - (start + 1) // bytes of body before the limit
		text, cut := body, min(len(body), max(rawCut, 0))
		if kind == tokEscString {
			st.dec, cut = appendUnquote(st.dec[:0], body, rawCut)
			text = st.dec
		}
		s.collect(pats, text[:cut], st)
		if len(st.spans) == 0 {
			continue
		}
		if out == nil {
			out = make([]byte, 0, len(raw)+len(raw)/8)
		}
		out = append(out, raw[copied:start]...)
		st.red = s.apply(st.red[:0], text, st.spans)
		out = appendQuote(out, st.red)
		copied = end
	}
	st.stack = w.stack[:0]
	if out != nil {
		res.Data = append(out, raw[copied:]...)
		res.Changed = true
	}
	res.Findings = st.findings(s)
	return res, nil
}

// stack is kept in the pooled state so deep documents do not allocate on
// every call.
func (st *state) stackBuf() []byte { return st.stack[:0] }

// walker validates one JSON value (RFC 8259) and yields the position of
// every string that is a value, not a key. It keeps its own stack instead
// of recursing, so nesting depth is limited only by memory.
type walker struct {
	in    []byte
	i     int
	stack []byte // '{' or '[' per open container
	after bool   // a value has just ended
	done  bool
}

func (w *walker) errorf(format string, args ...any) error {
	return fmt.Errorf("dlp: invalid JSON at offset %d: %s", w.i, fmt.Sprintf(format, args...))
}

// tokKind says what walker.next found.
type tokKind uint8

const (
	tokString    tokKind = iota // a string without escapes
	tokEscString                // a string with escapes
	tokNumber
)

// next returns the next string value, as the offsets of its opening quote
// and one past its closing quote, or the next number. start is -1 once the
// whole input has been validated.
func (w *walker) next() (start, end int, kind tokKind, err error) {
	for !w.done {
		w.skipWS()
		if w.after {
			if len(w.stack) == 0 {
				if w.i != len(w.in) {
					return 0, 0, 0, w.errorf("data after the value")
				}
				w.done = true
				break
			}
			if w.i >= len(w.in) {
				return 0, 0, 0, w.errorf("unexpected end of input")
			}
			top := w.stack[len(w.stack)-1]
			switch c := w.in[w.i]; {
			case c == ',':
				w.i++
				w.after = false
				if top == '{' {
					if err := w.key(); err != nil {
						return 0, 0, 0, err
					}
				}
			case c == '}' && top == '{', c == ']' && top == '[':
				w.i++
				w.stack = w.stack[:len(w.stack)-1]
			default:
				return 0, 0, 0, w.errorf("unexpected %q after a value", c)
			}
			continue
		}
		if w.i >= len(w.in) {
			return 0, 0, 0, w.errorf("unexpected end of input")
		}
		w.after = true
		switch c := w.in[w.i]; c {
		case '{':
			w.i++
			w.skipWS()
			if w.i < len(w.in) && w.in[w.i] == '}' {
				w.i++
				continue
			}
			w.stack = append(w.stack, '{')
			w.after = false
			if err := w.key(); err != nil {
				return 0, 0, 0, err
			}
		case '[':
			w.i++
			w.skipWS()
			if w.i < len(w.in) && w.in[w.i] == ']' {
				w.i++
				continue
			}
			w.stack = append(w.stack, '[')
			w.after = false
		case '"':
			start = w.i
			end, esc, err := w.str()
			if err != nil {
				return 0, 0, 0, err
			}
			if esc {
				return start, end, tokEscString, nil
			}
			return start, end, tokString, nil
		case 't':
			err = w.word("true")
		case 'f':
			err = w.word("false")
		case 'n':
			err = w.word("null")
		default:
			start = w.i
			if err := w.number(); err != nil {
				return 0, 0, 0, err
			}
			return start, w.i, tokNumber, nil
		}
		if err != nil {
			return 0, 0, 0, err
		}
	}
	return -1, -1, 0, nil
}

func (w *walker) skipWS() {
	for w.i < len(w.in) {
		switch w.in[w.i] {
		case ' ', '\t', '\n', '\r':
			w.i++
		default:
			return
		}
	}
}

// key consumes an object key and the colon after it.
func (w *walker) key() error {
	w.skipWS()
	if w.i >= len(w.in) || w.in[w.i] != '"' {
		return w.errorf("expected an object key")
	}
	if _, _, err := w.str(); err != nil {
		return err
	}
	w.skipWS()
	if w.i >= len(w.in) || w.in[w.i] != ':' {
		return w.errorf("expected ':' after an object key")
	}
	w.i++
	return nil
}

func (w *walker) word(lit string) error {
	if !bytes.HasPrefix(w.in[w.i:], []byte(lit)) {
		return w.errorf("invalid literal")
	}
	w.i += len(lit)
	return nil
}

func (w *walker) number() error {
	in, i := w.in, w.i
	if i < len(in) && in[i] == '-' {
		i++
	}
	switch {
	case i < len(in) && in[i] == '0':
		i++
	case i < len(in) && in[i] >= '1' && in[i] <= '9':
		i = digits(in, i)
	default:
		return w.errorf("invalid value")
	}
	if i < len(in) && in[i] == '.' {
		if j := digits(in, i+1); j > i+1 {
			i = j
		} else {
			return w.errorf("invalid number")
		}
	}
	if i < len(in) && (in[i] == 'e' || in[i] == 'E') {
		i++
		if i < len(in) && (in[i] == '+' || in[i] == '-') {
			i++
		}
		j := digits(in, i)
		if j == i {
			return w.errorf("invalid number")
		}
		i = j
	}
	w.i = i
	return nil
}

func digits(in []byte, i int) int {
	for i < len(in) && in[i] >= '0' && in[i] <= '9' {
		i++
	}
	return i
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// special reports whether any of 8 bytes is a quote, a backslash or a
// control character, the only bytes a string scan must stop at.
func special(v uint64) bool {
	hasZero := func(x uint64) uint64 { return (x - lsb) & ^x & msb }
	return (v-lsb*0x20)&^v&msb|hasZero(v^(lsb*'"'))|hasZero(v^(lsb*'\\')) != 0
}

// str scans the string starting at w.i (a quote). Bytes that are not valid
// UTF-8 are accepted, as encoding/json accepts them.
func (w *walker) str() (end int, esc bool, err error) {
	in := w.in
	j := w.i + 1
	for {
		for j+8 <= len(in) && !special(binary.LittleEndian.Uint64(in[j:])) {
			j += 8
		}
		if j >= len(in) {
			w.i = j
			return 0, false, w.errorf("unterminated string")
		}
		switch c := in[j]; {
		case c == '"':
			w.i = j + 1
			return j + 1, esc, nil
		case c == '\\':
			esc = true
			if j+1 >= len(in) {
				w.i = j
				return 0, false, w.errorf("unterminated string")
			}
			switch in[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				if _, ok := jsonstr.Hex4(in[j+2:]); !ok {
					w.i = j
					return 0, false, w.errorf("invalid \\u escape")
				}
				j += 6
			default:
				w.i = j
				return 0, false, w.errorf("invalid escape")
			}
		case c < 0x20:
			w.i = j
			return 0, false, w.errorf("control character in string")
		default:
			j++
		}
	}
}

// appendUnquote decodes the body of a string literal already validated by
// walker.str. A lone surrogate becomes U+FFFD, as in encoding/json. cut is
// the length of the decoded text that comes from the first rawCut bytes of
// body (an escape that crosses rawCut is left out), which is how
// max_scan_size limits a string crossing the limit.
func appendUnquote(dst, body []byte, rawCut int) (out []byte, cut int) {
	base := len(dst)
	if rawCut >= len(body) {
		dst = jsonstr.AppendUnescaped(dst, body)
		return dst, len(dst) - base
	}
	dst, used := jsonstr.AppendUnescapedPrefix(dst, body, rawCut)
	cut = len(dst) - base
	return jsonstr.AppendUnescaped(dst, body[used:]), cut
}

// appendQuote appends s as a JSON string literal. Only what JSON requires
// is escaped (no HTML escaping, so "<" and "&" stay readable); bytes that
// are not valid UTF-8 become \ufffd, as encoding/json writes them.
func appendQuote(dst, s []byte) []byte {
	return jsonstr.Append(dst, s, jsonstr.EscapeMinimal)
}
