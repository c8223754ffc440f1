package dlp

import (
	"slices"
	"sync"
)

// span is a stretch of text to replace with the marker of pattern pat.
type span struct{ start, end, pat int }

// state is the scratch space of one call, pooled so that text without
// findings costs no allocation.
type state struct {
	counts []int // matches per pattern index
	found  bool
	spans  []span
	locs   [][2]int
	wins   []window
	dec    []byte // decoded JSON string
	red    []byte // redacted string
	enc    []byte // normalised base64 run
	raw    []byte // decoded base64/hex run
	keys   []int  // output offsets of the keys RedactJSON rewrote
	rc     runCache
}

var statePool = sync.Pool{New: func() any { return new(state) }}

func getState(npat int) *state {
	st := statePool.Get().(*state)
	if cap(st.counts) < npat {
		st.counts = make([]int, npat)
	}
	st.counts = st.counts[:npat]
	clear(st.counts)
	st.found = false
	return st
}

func putState(st *state) {
	// A huge message must not pin its buffers in the pool for ever.
	if cap(st.dec) > 1<<20 || cap(st.red) > 1<<20 || cap(st.raw) > 1<<20 || cap(st.enc) > 1<<20 {
		return
	}
	statePool.Put(st)
}

func (st *state) findings(s *Scanner) []Finding {
	if !st.found {
		return nil
	}
	var fs []Finding
	for i, n := range st.counts {
		if n > 0 {
			fs = append(fs, Finding{Rule: s.patterns[i].name, Count: n})
		}
	}
	return fs
}

// collect sets st.spans to the redaction spans of text for the patterns
// pats, every span computed on the original text, and adds to st.counts.
func (s *Scanner) collect(pats []int, text []byte, st *state) {
	st.spans = st.spans[:0]
	st.rc.reset(s.runSets)
	for _, pi := range pats {
		p := &s.patterns[pi]
		st.locs, st.wins = p.findAll(text, st.locs[:0], st.wins, &st.rc)
		for _, loc := range st.locs {
			st.spans = append(st.spans, span{loc[0], loc[1], pi})
		}
		st.counts[pi] += len(st.locs)
	}
	if s.detectEncoding {
		s.collectEncoded(pats, text, st)
	}
	if len(st.spans) > 0 {
		st.found = true
	}
}

// apply appends text to dst with every span replaced by its marker.
// Overlapping and adjacent spans merge into one marker named after the
// pattern listed first, so the output never holds a fragment of a secret
// between two markers and never depends on the order patterns ran in.
func (s *Scanner) apply(dst, text []byte, spans []span) []byte {
	slices.SortFunc(spans, func(x, y span) int {
		if x.start != y.start {
			return x.start - y.start
		}
		return x.pat - y.pat
	})
	last := 0
	for i := 0; i < len(spans); {
		cur := spans[i]
		for i++; i < len(spans) && spans[i].start <= cur.end; i++ {
			cur.end = max(cur.end, spans[i].end)
			cur.pat = min(cur.pat, spans[i].pat)
		}
		dst = append(dst, text[last:cur.start]...)
		dst = s.appendMarker(dst, cur.pat)
		last = cur.end
	}
	return append(dst, text[last:]...)
}

// appendMarker appends the marker of pattern pat. It is built by hand
// rather than with ReplaceAll, which would expand a "$" in the name.
func (s *Scanner) appendMarker(dst []byte, pat int) []byte {
	dst = append(dst, "[REDACTED:"...)
	dst = append(dst, s.patterns[pat].name...)
	return append(dst, ']')
}

// RedactString redacts text for dir with the patterns whose scope covers
// dir. Only the first MaxScanSize bytes are scanned; a caller holding a
// longer text logs the warning §3.6.3 requires. The findings list each
// matching pattern once, in policy order.
func (s *Scanner) RedactString(dir Direction, text string) (string, []Finding) {
	pats := s.patternsFor(dir)
	if len(pats) == 0 || text == "" {
		return text, nil
	}
	b := []byte(text)
	st := getState(len(s.patterns))
	defer putState(st)
	s.collect(pats, b[:min(len(b), s.maxScan)], st)
	if len(st.spans) == 0 {
		return text, nil
	}
	st.red = s.apply(st.red[:0], b, st.spans)
	return string(st.red), st.findings(s)
}
