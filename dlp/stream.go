package dlp

import "slices"

// MaxOverlap is the most bytes RedactHead keeps back for the next call: a
// match of up to this length that straddles the cut between two calls is
// still found whole. It is what is kept when a pattern's matches have no
// bounded length (or detect_encoding is on, whose encoded runs are longer
// than the secrets they hold); patterns whose matches are all shorter keep
// back only as much as their longest match.
const MaxOverlap = 8 << 10

// RedactHead redacts the head of a text that arrives in pieces and cannot
// be held whole, such as one very long line of a server's stderr. It
// returns the redacted form of text[:n]; the caller writes it, keeps
// text[n:], appends what arrives next, and calls RedactHead again, or
// RedactString for what is left at the end of the text.
//
// The tail it keeps back is at least as long as the longest match of the
// patterns of dir (at most MaxOverlap, and at most half of text), so a
// secret that straddles the cut is redacted whole: if a match of the
// scanned text crosses the cut, the cut moves to the match's end. A match
// longer than the tail kept back that also runs past the end of text (one
// of an unbounded pattern such as `token=\S+`) is redacted as far as text
// goes; what follows is scanned on its own. Like RedactString it scans at
// most MaxScanSize bytes.
func (s *Scanner) RedactHead(dir Direction, text []byte) (head []byte, n int) {
	pats := s.patternsFor(dir)
	n = len(text) - min(s.overlap(pats), len(text)/2)
	if len(pats) == 0 {
		return text[:n], n
	}
	st := getState(len(s.patterns))
	defer putState(st)
	s.collect(pats, text[:min(len(text), s.maxScan)], st)
	if len(st.spans) == 0 {
		return text[:n], n
	}
	slices.SortFunc(st.spans, func(x, y span) int { return x.start - y.start })
	// Move the cut to the end of the group of overlapping or adjacent
	// spans (which apply merges into one marker) that crosses it, then
	// leave out the spans after it: the next call finds them again.
	for i := 0; i < len(st.spans); {
		start, end := st.spans[i].start, st.spans[i].end
		for i++; i < len(st.spans) && st.spans[i].start <= end; i++ {
			end = max(end, st.spans[i].end)
		}
		if start >= n {
			break
		}
		n = max(n, end)
	}
	kept := st.spans[:0]
	for _, sp := range st.spans {
		if sp.start < n {
			kept = append(kept, sp)
		}
	}
	return s.apply(nil, text[:n], kept), n
}

// overlap is how many bytes RedactHead keeps back for the patterns pats.
func (s *Scanner) overlap(pats []int) int {
	if s.detectEncoding {
		return MaxOverlap
	}
	n := 0
	for _, pi := range pats {
		m := s.patterns[pi].pf.maxLen
		if m < 0 || m >= MaxOverlap {
			return MaxOverlap
		}
		n = max(n, m)
	}
	return n
}
