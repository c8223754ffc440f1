package dlp

import (
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// A window around an anchor occurrence is a poor bound when the pattern's
// alphabet is broad: for `(?i)token\s*[:=]\s*\S+` the run around "token" is
// the whole text, and an unanchored regexp then tries every position of it
// (hundreds of microseconds for 4 KB). When the anchor lies a short,
// bounded distance after the start of every match, the candidate starts are
// instead the few positions just before each occurrence, and the regexp
// runs anchored at each of them, so it does work proportional to the match
// and not to the text.
//
// FindAllIndex reports, from pos (0, then the end of the previous match),
// the match with the leftmost start and, among those, the one leftmost-first
// preference picks. Every match here is non-empty and starts in [h-before,
// h] for an anchor occurrence h, so trying those starts in increasing order
// and taking the first that matches, resuming at its end, yields the same
// list. An anchored attempt at s must behave as the whole-text scan does at
// s, which needs the same neighbours: the regexp gets one byte of left
// context (consumed by a leading (?s:.)) so that \b and (?m)^ see it, and
// \A fails as it should; on the right it gets enough text that no match can
// reach the cut, plus utf8.UTFMax bytes so the rune after the match end is
// decoded whole.

const (
	unbounded = -1
	// maxBefore is the largest anchor distance served by anchored
	// attempts; each occurrence costs up to maxBefore+1 of them.
	maxBefore = 8
	// maxWidthCap keeps width sums far from overflow; wider is unbounded.
	maxWidthCap = 1 << 24
)

func addWidth(a, b int) int {
	if a < 0 || b < 0 || a+b > maxWidthCap {
		return unbounded
	}
	return a + b
}

// maxWidth is the most bytes a match of re can consume, or unbounded.
// Widths are upper bounds: a non-ASCII rune counts utf8.UTFMax.
func maxWidth(re *syntax.Regexp) int {
	switch re.Op {
	case syntax.OpLiteral:
		w := 0
		for _, r := range re.Rune {
			w += runeWidth(r, re.Flags&syntax.FoldCase != 0)
		}
		return w
	case syntax.OpCharClass:
		if len(re.Rune) > 0 && re.Rune[len(re.Rune)-1] < utf8.RuneSelf {
			return 1
		}
		return utf8.UTFMax
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		return utf8.UTFMax
	case syntax.OpCapture, syntax.OpQuest:
		return maxWidth(re.Sub[0])
	case syntax.OpStar, syntax.OpPlus:
		if maxWidth(re.Sub[0]) == 0 {
			return 0
		}
		return unbounded
	case syntax.OpRepeat:
		w := maxWidth(re.Sub[0])
		switch {
		case w == 0:
			return 0
		case w < 0 || re.Max < 0 || re.Max > maxWidthCap/w:
			return unbounded
		}
		return w * re.Max
	case syntax.OpConcat:
		w := 0
		for _, sub := range re.Sub {
			w = addWidth(w, maxWidth(sub))
		}
		return w
	case syntax.OpAlternate:
		w := 0
		for _, sub := range re.Sub {
			sw := maxWidth(sub)
			if sw < 0 {
				return unbounded
			}
			w = max(w, sw)
		}
		return w
	}
	return 0 // assertions, empty match, no match
}

func runeWidth(r rune, fold bool) int {
	if r >= utf8.RuneSelf {
		return utf8.UTFMax
	}
	if fold {
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f >= utf8.RuneSelf {
				return utf8.UTFMax // (?i)k matches U+212A KELVIN SIGN
			}
		}
	}
	return 1
}

// compileAnchored compiles the forms of expr used for anchored attempts,
// or returns nils when the pattern is not suited to them. The forms wrap
// the source text in a group, which is exact for every valid expression
// except one holding \Q, whose quoted text may run to the end and swallow
// the closing parenthesis; such patterns keep the window search.
func compileAnchored(expr string, pf *prefilter) (at, atCtx *regexp.Regexp) {
	if !pf.ok || pf.before < 0 || pf.before > maxBefore || len(pf.runs) > 0 ||
		len(pf.lits)+len(pf.folds) == 0 || strings.Contains(expr, `\Q`) {
		return nil, nil
	}
	at, err1 := regexp.Compile(`^(?:` + expr + `)`)
	atCtx, err2 := regexp.Compile(`^(?s:.)(?:` + expr + `)`)
	if err1 != nil || err2 != nil {
		return nil, nil
	}
	return at, atCtx
}

// findAnchored appends to dst the matches of p in text, as a single
// FindAllIndex over text would report them, by anchored attempts near
// every anchor occurrence.
func (p *pattern) findAnchored(text []byte, dst [][2]int, hits []window) ([][2]int, []window) {
	pf := &p.pf
	hits = pf.occurrences(text, hits[:0])
	if len(hits) == 0 {
		return dst, hits
	}
	// Occurrences of different literals interleave.
	slices.SortFunc(hits, func(x, y window) int { return x.l - y.l })
	from := 0    // every start before from is decided
	runEnd := -1 // end of the alpha run that holds the last start tried
	for _, h := range hits {
		if h.l < from {
			continue
		}
		// A match consumes only alpha bytes, so it cannot start before the
		// alpha run that leads up to the occurrence.
		s := h.l
		for lo := max(from, h.l-pf.before); s > lo && pf.inAlpha[text[s-1]]; {
			s--
		}
		for s <= h.l {
			if !runeStart(text, s) {
				s++
				continue
			}
			if s >= runEnd {
				runEnd = s
				for runEnd < len(text) && pf.inAlpha[text[runEnd]] {
					runEnd++
				}
			}
			if runEnd-s < pf.minLen {
				// Too short for a match, and so is every later start in
				// the run; s is not alpha when the run is empty.
				s = max(s+1, runEnd)
				continue
			}
			if e := p.matchAt(text, s, runEnd); e > s {
				dst = append(dst, [2]int{s, e})
				from, s = e, e
				continue
			}
			s++
		}
		from = max(from, h.l+1)
	}
	return dst, hits
}

// matchAt returns the end of the match that starts at s, or -1. No match
// extends past runEnd (the end of the alpha run holding s) or past s plus
// the pattern's maximal width.
func (p *pattern) matchAt(text []byte, s, runEnd int) int {
	end := runEnd
	if p.pf.maxLen >= 0 {
		end = min(end, s+p.pf.maxLen)
	}
	hi := min(len(text), end+utf8.UTFMax)
	if s == 0 {
		if loc := p.at.FindIndex(text[:hi]); loc != nil {
			return loc[1]
		}
		return -1
	}
	if loc := p.atCtx.FindIndex(text[s-1 : hi]); loc != nil {
		return s - 1 + loc[1]
	}
	return -1
}

// runeStart reports whether a regexp decoding text from its start steps on
// offset s: it does unless s lies inside a valid multi-byte sequence that
// begins before s (invalid bytes are stepped over one at a time).
func runeStart(text []byte, s int) bool {
	if s >= len(text) || utf8.RuneStart(text[s]) {
		return true
	}
	for k := 1; k < utf8.UTFMax && k <= s; k++ {
		if utf8.RuneStart(text[s-k]) {
			_, w := utf8.DecodeRune(text[s-k:])
			return w <= k
		}
	}
	return true
}
