package dlp

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/agentid/agentid/internal/jsonstr"
	"github.com/agentid/agentid/internal/strictjson"
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
	// strings (keys and values) and numbers that begin within the first
	// MaxScanSize bytes were scanned, and of a string that crosses the
	// limit only the part before it. The caller logs the warning §3.6.3
	// requires.
	Truncated bool
}

// ErrDuplicateKey is the error of RedactJSON when redacting object keys
// would give one object two keys that are the same after unescaping and
// case folding (the rule of strictjson.MCP, which jsonrpc and the policy
// engine apply): "[REDACTED:Key]" twice, or a marker next to a key that
// already reads the same. Parsers read a duplicate key differently (the
// first, the last, or an error), so such output is never produced. The
// Result that comes with it has no Data but still has its Findings and
// Truncated, so that request-side DLP can apply on_redaction_failure.
var ErrDuplicateKey = errors.New("dlp: redacting object keys would create a duplicate key")

// RedactJSON redacts every string (object keys included) and number of a
// JSON document, at any depth, with the patterns whose scope covers dir.
// For responses the caller passes the whole "result" or "error" member;
// for requests the params. Only the literals that changed are rewritten
// (strings re-encoded without HTML escaping); every other byte of raw is
// kept, so fields, key order, the spelling of the other numbers and
// whitespace survive.
//
// A number is scanned as it is written (for example "-4111111111111111.0").
// When a pattern matches any part of it, the whole number is replaced by the
// string "[REDACTED:<name>]", named after the first listed pattern that
// matched: the value changes type, which a consumer is more likely to notice
// than a leak.
//
// A key is redacted like a string value. When that would make two keys of
// one object the same (see ErrDuplicateKey) the error is ErrDuplicateKey.
//
// Input that is not a single valid JSON value (RFC 8259, as json.Valid
// reads it: strictjson.Syntax) is an error, and the caller must then
// withhold the message: what cannot be parsed cannot be shown to be free of
// secrets. The callers pass values that jsonrpc's strict decoder admitted,
// so only syntax is checked here, never less. A disabled scanner returns
// raw unchanged without looking at it.
func (s *Scanner) RedactJSON(dir Direction, raw json.RawMessage) (Result, error) {
	return s.redactJSON(dir, raw, strictjson.Syntax)
}

// RedactJSONValidated is RedactJSON for a value already known to be valid
// JSON, such as a member of a message jsonrpc.Decode admitted: its strings
// are not validated a second time (strictjson.Validated), which is most of
// the cost of walking it. On valid JSON the result is RedactJSON's; on
// anything else it may redact less, so never call it there.
func (s *Scanner) RedactJSONValidated(dir Direction, raw json.RawMessage) (Result, error) {
	return s.redactJSON(dir, raw, strictjson.Validated)
}

func (s *Scanner) redactJSON(dir Direction, raw json.RawMessage, profile strictjson.Profile) (Result, error) {
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
	sc := strictjson.NewScanner(profile, raw)
	defer sc.Release()

	var out []byte
	copied := 0
	st.keys = st.keys[:0]
tokens:
	for {
		t, err := sc.Next()
		if err != nil {
			return Result{}, fmt.Errorf("dlp: invalid JSON: %w", err)
		}
		switch t.Kind {
		case strictjson.String, strictjson.Key, strictjson.Number:
		case strictjson.EOF:
			break tokens
		default:
			continue
		}
		start, end := t.Start, t.End
		if start >= limit {
			continue // still read, so invalid JSON past the limit is caught
		}
		if t.Kind == strictjson.Number {
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
		if t.Escaped() {
			st.dec, cut = appendUnquote(st.dec[:0], body, rawCut)
			text = st.dec
		}
		whole := t.Kind == strictjson.Key && cut == len(text) // a key scanned whole
		if whole && s.cleanKeys[dir].clean(text) {
			continue
		}
		s.collect(pats, text[:cut], st)
		if len(st.spans) == 0 {
			if whole {
				s.cleanKeys[dir].add(text)
			}
			continue
		}
		if out == nil {
			out = make([]byte, 0, len(raw)+len(raw)/8)
		}
		out = append(out, raw[copied:start]...)
		if t.Kind == strictjson.Key {
			st.keys = append(st.keys, len(out))
		}
		st.red = s.apply(st.red[:0], text, st.spans)
		out = appendQuote(out, st.red)
		copied = end
	}
	if out != nil {
		res.Data = append(out, raw[copied:]...)
		res.Changed = true
	}
	res.Findings = st.findings(s)
	if len(st.keys) > 0 && keysCollide(res.Data, st.keys) {
		return Result{Findings: res.Findings, Truncated: res.Truncated}, ErrDuplicateKey
	}
	return res, nil
}

// keysCollide reports whether a key of data (valid JSON) at one of the
// offsets at (ascending: the keys RedactJSON rewrote) is the same as
// another key of its object after unescaping and case folding. It runs
// only when a key was redacted, which is rare, so it favours simplicity:
// the folded keys of the open objects are kept in one buffer, and an
// object with a rewritten key is checked with a map when it closes.
func keysCollide(data []byte, at []int) bool {
	sc := strictjson.NewScanner(strictjson.Syntax, data)
	defer sc.Release()
	type key struct {
		start, end int // in fold
		rewritten  bool
	}
	type frame struct {
		keys, fold int // len(keys) and len(fold) when the object opened
		rewritten  bool
	}
	var (
		frames []frame
		keys   []key
		fold   []byte
	)
	for {
		t, err := sc.Next()
		if err != nil || t.Kind == strictjson.EOF {
			return false // data is the output of RedactJSON: valid
		}
		switch t.Kind {
		case strictjson.Object:
			frames = append(frames, frame{keys: len(keys), fold: len(fold)})
		case strictjson.Key:
			f := &frames[len(frames)-1]
			k := key{start: len(fold)}
			fold = strictjson.AppendFold(fold, sc.Text(t))
			k.end = len(fold)
			for len(at) > 0 && at[0] < t.Start {
				at = at[1:]
			}
			if len(at) > 0 && at[0] == t.Start {
				k.rewritten, f.rewritten = true, true
			}
			keys = append(keys, k)
		case strictjson.ObjectEnd:
			f := frames[len(frames)-1]
			frames = frames[:len(frames)-1]
			if f.rewritten {
				seen := make(map[string]int, len(keys)-f.keys)
				for _, k := range keys[f.keys:] {
					seen[string(fold[k.start:k.end])]++
				}
				for _, k := range keys[f.keys:] {
					if k.rewritten && seen[string(fold[k.start:k.end])] > 1 {
						return true
					}
				}
			}
			keys, fold = keys[:f.keys], fold[:f.fold]
		}
	}
}

// appendUnquote decodes the body of a string literal validated by a
// strictjson.Scanner. A lone surrogate becomes U+FFFD, as in encoding/json.
// cut is the length of the decoded text that comes from the first rawCut
// bytes of body (an escape that crosses rawCut is left out), which is how
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
