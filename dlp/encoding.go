package dlp

import (
	"encoding/base64"
	"encoding/hex"
)

// minEncodedRun is the shortest run of base64 or hex characters, counting
// "=" padding, that detect_encoding decodes. Shorter runs are ordinary
// words, and 16 characters carry the shortest secret worth hiding (the
// base64 of an SSN, with its padding).
const minEncodedRun = 16

// isB64 reports characters of the standard and URL-safe base64 alphabets
// (hex digits are a subset).
func isB64(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
		c == '+' || c == '/' || c == '-' || c == '_'
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// collectEncoded implements detect_encoding: every maximal run of base64
// characters of at least minEncodedRun is decoded as hex (when it is hex)
// and as base64 at each of the four possible alignments, because the
// encoded secret need not start the run (a prefix such as "key" glued to
// it shifts the 4-character groups). When a pattern matches the decoded
// bytes, the whole run (with its "=" padding) is redacted under that
// pattern's ordinary marker. Each run is decoded at most five times, so the
// work stays linear in the text.
func (s *Scanner) collectEncoded(pats []int, text []byte, st *state) {
	for i := 0; i < len(text); {
		if !isB64(text[i]) {
			i++
			continue
		}
		j := i
		for j < len(text) && isB64(text[j]) {
			j++
		}
		end := j
		for end < len(text) && end-j < 2 && text[end] == '=' {
			end++
		}
		if end-i >= minEncodedRun {
			s.scanEncodedRun(pats, text[i:j], i, end, st)
		}
		i = end
	}
}

func (s *Scanner) scanEncodedRun(pats []int, run []byte, start, end int, st *state) {
	allHex := len(run)%2 == 0
	for _, c := range run {
		if !isHex(c) {
			allHex = false
			break
		}
	}
	if allHex {
		if cap(st.raw) < len(run)/2 {
			st.raw = make([]byte, len(run)/2)
		}
		st.raw = st.raw[:len(run)/2]
		if _, err := hex.Decode(st.raw, run); err == nil && s.matchDecoded(pats, st.raw, start, end, st) {
			return
		}
	}
	// Map the URL-safe alphabet onto the standard one so one decoder
	// serves both.
	st.enc = append(st.enc[:0], run...)
	for k, c := range st.enc {
		switch c {
		case '-':
			st.enc[k] = '+'
		case '_':
			st.enc[k] = '/'
		}
	}
	for off := 0; off < 4 && len(st.enc)-off >= 8; off++ {
		sub := st.enc[off:]
		if len(sub)%4 == 1 {
			sub = sub[:len(sub)-1] // a lone trailing character encodes no byte
		}
		n := base64.RawStdEncoding.DecodedLen(len(sub))
		if cap(st.raw) < n {
			st.raw = make([]byte, n)
		}
		st.raw = st.raw[:n]
		m, err := base64.RawStdEncoding.Decode(st.raw, sub)
		if err != nil {
			continue
		}
		if s.matchDecoded(pats, st.raw[:m], start, end, st) {
			return
		}
	}
}

// matchDecoded scans decoded bytes and, for each pattern that matches,
// records a span over the encoded run [start, end).
func (s *Scanner) matchDecoded(pats []int, decoded []byte, start, end int, st *state) bool {
	found := false
	st.rc.reset(s.runSets)
	for _, pi := range pats {
		p := &s.patterns[pi]
		st.locs, st.wins = p.findAll(decoded, st.locs[:0], st.wins, &st.rc)
		if len(st.locs) == 0 {
			continue
		}
		st.counts[pi] += len(st.locs)
		st.spans = append(st.spans, span{start, end, pi})
		found = true
	}
	return found
}
