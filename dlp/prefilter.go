package dlp

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/bits"
	"regexp"
	"regexp/syntax"
	"slices"
	"unicode"
	"unicode/utf8"
)

// Go's regexp has no first-byte skip for patterns without a literal prefix,
// so an email or SSN pattern costs tens of microseconds per 4 KB even when
// the text holds nothing of the kind. The prefilter avoids running the
// regexp over text that cannot contain a match.
//
// From the pattern's syntax tree it derives
//   - an anchor: literals, or runs of k bytes of one ASCII class, at least
//     one of which occurs inside every match;
//   - alpha: every byte a match can consume;
//   - necessary bytes: a set of at most three bytes, or the ASCII digits,
//     one of which every match holds. Text without them is ruled out
//     before any anchor is searched (requiredSet, requires).
//
// A match consumes only bytes in alpha and contains an anchor occurrence, so
// it lies inside the maximal run of alpha bytes around some occurrence. The
// regexp runs only on those runs, each widened by one byte on either side so
// that \b, (?m)^ and (?m)$ see the same neighbour they see in the whole
// text. That neighbour is never in alpha, so no match can start or end on
// it, and matches cannot cross it; the matches found run by run are
// therefore exactly the matches of one pass over the whole text (the
// differential tests and fuzz target check this).

type byteSet [4]uint64

func (s *byteSet) add(b byte)       { s[b>>6] |= 1 << (b & 63) }
func (s *byteSet) has(b byte) bool  { return s[b>>6]&(1<<(b&63)) != 0 }
func (s *byteSet) union(t *byteSet) { s[0] |= t[0]; s[1] |= t[1]; s[2] |= t[2]; s[3] |= t[3] }
func (s *byteSet) addHigh()         { s[2], s[3] = ^uint64(0), ^uint64(0) }
func (s *byteSet) addRange(lo, hi int) {
	for c := lo; c <= hi; c++ {
		s.add(byte(c))
	}
}

// table returns the set as a table indexed by byte, which the scans over
// class runs test in fewer instructions than the bit set.
func (s *byteSet) table() *[256]bool {
	var t [256]bool
	for b := range t {
		t[b] = s.has(byte(b))
	}
	return &t
}

func (s *byteSet) len() int {
	return bits.OnesCount64(s[0]) + bits.OnesCount64(s[1]) + bits.OnesCount64(s[2]) + bits.OnesCount64(s[3])
}

// addRune adds the bytes a regexp may consume for r. Any rune outside ASCII
// adds every byte >= 0x80: besides its own encoding, U+FFFD in a class or
// literal matches any single invalid byte.
func (s *byteSet) addRune(r rune) {
	if r < utf8.RuneSelf {
		s.add(byte(r))
	} else {
		s.addHigh()
	}
}

// lit is a literal that occurs in every match.
type lit struct {
	s    string
	fold bool // compared with Unicode simple case folding, as (?i) does
}

// classRun says every match contains k consecutive bytes from set (ASCII),
// and need bytes from set in all.
type classRun struct {
	set  byteSet
	in   *[256]bool // set as a table
	k    int
	need int
	// shared indexes Scanner.runSets when other patterns of the scanner
	// search the same class; -1 otherwise.
	shared int
}

type anchor struct {
	lits []lit
	runs []classRun
	// before bounds the bytes between the start of a match and the start
	// of the anchor occurrence inside it (unbounded when negative). Zero
	// means every match starts with one of lits.
	before int
}

// exactLit is a literal prepared for searching: IndexByte looks for its
// rarest byte, which skips far more text than its first byte would.
type exactLit struct {
	b    []byte
	rare int
}

// foldLit is a case-folded literal prepared for searching: the search looks
// for every spelling of its rarest rune, then compares the other runes one
// by one in both directions. An ASCII literal in text that holds none of
// the non-ASCII runes its runes fold to is compared byte by byte.
type foldLit struct {
	runes []rune
	at    int      // index in runes of the searched rune
	encs  [][]byte // UTF-8 spellings of every rune in its fold orbit
	// For a literal of ASCII runes: lower is it in lower case, with mask
	// 0x20 at its letters (c|mask[i] == lower[i] compares a byte); ascii
	// the spellings in encs that are ASCII; exotic the non-ASCII runes its
	// runes fold to (U+212A KELVIN SIGN for k, U+017F LONG S for s),
	// UTF-8 encoded.
	lower, mask []byte
	ascii       []byte
	exotic      [][]byte
}

type prefilter struct {
	ok      bool // false: scan the whole text
	lits    []exactLit
	folds   []foldLit
	runs    []classRun
	alpha   byteSet
	inAlpha *[256]bool // alpha as a table
	minLen  int        // every match is at least this many bytes long
	maxLen  int        // no match is longer than this many bytes; negative: unbounded
	// before is anchor.before of the chosen literal anchor; negative when
	// the anchor is a class run or the distance is unbounded.
	before int
	// required lists up to maxRequired bytes one of which every match
	// holds, when searching them first is cheaper than the anchor: text
	// without any of them has no match.
	required []byte
	// digit says every match holds an ASCII digit; text without one is
	// ruled out by one pass shared by all such patterns (runCache.digit).
	digit bool
}

// maxRequired bounds the bytes of a required set: each is one IndexByte.
const maxRequired = 3

// Relative costs (unit ≈ 100 ns on 4 KB of text) used to pick the cheapest
// anchor. They only steer performance; any anchor gives correct results.
const (
	textLen      = 4096
	costNoFilter = 800.0
	verifyNarrow = 3.0
	verifyBroad  = 800.0
	maxExact     = 16
	maxExactLen  = 64
)

type nodeInfo struct {
	exact    []lit // all strings the node can match, when exactOK
	exactOK  bool
	best     anchor
	bestCost float64 // +Inf when there is no anchor
	minLen   int
	// cls is set when the node consumes exactly one byte from an ASCII class.
	cls   byteSet
	clsOK bool
}

type analyzer struct{ verify float64 }

func newPrefilter(re *syntax.Regexp) prefilter {
	var pf prefilter
	collectAlpha(re, &pf.alpha)
	a := analyzer{verify: verifyNarrow}
	if pf.alpha.len() > 160 {
		// Runs of such patterns are long, so every anchor hit costs about a
		// full scan.
		a.verify = verifyBroad
	}
	info := a.node(re)
	cand, cost := info.best, info.bestCost
	if info.exactOK && !hasEmpty(info.exact) {
		if c := a.litsCost(info.exact); c < cost {
			cand, cost = anchor{lits: info.exact}, c
		}
	}
	if cost >= costNoFilter || math.IsInf(cost, 1) {
		return prefilter{}
	}
	pf.ok = true
	pf.inAlpha = pf.alpha.table()
	pf.minLen = info.minLen
	pf.maxLen = maxWidth(re)
	pf.before = cand.before
	if len(cand.runs) > 0 {
		pf.before = unbounded
	}
	for _, l := range cand.lits {
		if l.fold {
			f, _ := makeFoldLit(l.s)
			pf.folds = append(pf.folds, f)
		} else {
			pf.lits = append(pf.lits, makeExactLit(l.s))
		}
	}
	for _, r := range cand.runs {
		r.need = minCount(re, &r.set)
		r.in = r.set.table()
		r.shared = -1
		pf.runs = append(pf.runs, r)
	}
	// A case-folded literal or a class is searched through runs of
	// common letters or digits; a rare byte such as the ':' of
	// "(?i)token\s*:" rules out most text at the cost of one IndexByte.
	var digits byteSet
	digits.addRange('0', '9')
	pf.digit = requires(re, &digits)
	if len(pf.folds) > 0 || len(pf.runs) > 0 {
		if set, _, ok := requiredSet(re); ok && set.len() <= maxRequired {
			for b := 0; b < 256; b++ {
				if set.has(byte(b)) {
					pf.required = append(pf.required, byte(b))
				}
			}
		}
	}
	return pf
}

// mayMatch reports whether text holds one of the required bytes.
func (pf *prefilter) mayMatch(text []byte) bool {
	if pf.required == nil {
		return true
	}
	for _, b := range pf.required {
		if bytes.IndexByte(text, b) >= 0 {
			return true
		}
	}
	return false
}

// requiredSet returns a set of bytes one of which every match of re holds,
// the rarest it finds, and how common its bytes are; ok is false when it
// finds none. A rune counts by the first byte of its encoding; a literal
// U+FFFD, which also matches invalid bytes, not at all.
func requiredSet(re *syntax.Regexp) (set byteSet, freq float64, ok bool) {
	offer := func(s byteSet) {
		if f := setFreq(&s); !ok || f < freq {
			set, freq, ok = s, f, true
		}
	}
	switch re.Op {
	case syntax.OpLiteral:
		for _, r := range re.Rune {
			if r == utf8.RuneError {
				continue
			}
			spellings := []rune{r}
			if re.Flags&syntax.FoldCase != 0 {
				spellings = orbit(r)
			}
			var s byteSet
			for _, o := range spellings {
				s.add(utf8.AppendRune(nil, o)[0])
			}
			offer(s)
		}
	case syntax.OpCharClass:
		var s byteSet
		for i := 0; i+1 < len(re.Rune); i += 2 {
			lo, hi := re.Rune[i], re.Rune[i+1]
			if lo < utf8.RuneSelf {
				s.addRange(int(lo), int(min(hi, utf8.RuneSelf-1)))
			}
			if hi >= utf8.RuneSelf {
				s.addHigh() // lead bytes, and invalid bytes matched as U+FFFD
			}
		}
		offer(s)
	case syntax.OpCapture, syntax.OpPlus:
		return requiredSet(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return requiredSet(re.Sub[0])
		}
	case syntax.OpConcat:
		for _, sub := range re.Sub {
			if s, _, k := requiredSet(sub); k {
				offer(s)
			}
		}
	case syntax.OpAlternate:
		var u byteSet
		for _, sub := range re.Sub {
			s, _, k := requiredSet(sub)
			if !k {
				return byteSet{}, 0, false
			}
			u.union(&s)
		}
		offer(u)
	}
	return set, freq, ok
}

// requires reports whether every match of re holds a byte of set, set being
// ASCII: a literal rune spelled only with bytes of set, or a class of them.
func requires(re *syntax.Regexp, set *byteSet) bool {
	switch re.Op {
	case syntax.OpLiteral:
		for _, r := range re.Rune {
			spellings := []rune{r}
			if re.Flags&syntax.FoldCase != 0 {
				spellings = orbit(r)
			}
			if !slices.ContainsFunc(spellings, func(o rune) bool { return o >= utf8.RuneSelf || !set.has(byte(o)) }) {
				return true
			}
		}
	case syntax.OpCharClass:
		if len(re.Rune) == 0 {
			return false
		}
		for i := 0; i+1 < len(re.Rune); i += 2 {
			for r := re.Rune[i]; r <= re.Rune[i+1]; r++ {
				if r >= utf8.RuneSelf || !set.has(byte(r)) {
					return false
				}
			}
		}
		return true
	case syntax.OpCapture, syntax.OpPlus:
		return requires(re.Sub[0], set)
	case syntax.OpRepeat:
		return re.Min >= 1 && requires(re.Sub[0], set)
	case syntax.OpConcat:
		return slices.ContainsFunc(re.Sub, func(sub *syntax.Regexp) bool { return requires(sub, set) })
	case syntax.OpAlternate:
		return len(re.Sub) > 0 && !slices.ContainsFunc(re.Sub, func(sub *syntax.Regexp) bool { return !requires(sub, set) })
	}
	return false
}

// hasDigit reports whether text holds an ASCII digit, 32 bytes a round.
func hasDigit(text []byte) bool {
	i := 0
	for ; i+32 <= len(text); i += 32 {
		w := text[i : i+32 : i+32]
		if digits8(binary.LittleEndian.Uint64(w[0:8]))|digits8(binary.LittleEndian.Uint64(w[8:16]))|
			digits8(binary.LittleEndian.Uint64(w[16:24]))|digits8(binary.LittleEndian.Uint64(w[24:32])) != 0 {
			return true
		}
	}
	for ; i+8 <= len(text); i += 8 {
		if digits8(binary.LittleEndian.Uint64(text[i:])) != 0 {
			return true
		}
	}
	for ; i < len(text); i++ {
		if '0' <= text[i] && text[i] <= '9' {
			return true
		}
	}
	return false
}

// digits8 sets the top bit of each byte of x that is an ASCII digit. With
// each byte's top bit cleared, the first sum sets the top bit of a byte >=
// '0' and the second of one > '9'; neither carries into the next byte. A
// byte whose own top bit is set is not ASCII.
func digits8(x uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	h := x &^ highs
	return (h + ones*(0x80-'0')) &^ (h + ones*(0x80-'9'-1)) &^ x & highs
}

func setFreq(s *byteSet) float64 {
	f := 0.0
	for b := 0; b < 256; b++ {
		if s.has(byte(b)) {
			if b < utf8.RuneSelf {
				f += byteFreq(byte(b))
			} else {
				f += 0.001
			}
		}
	}
	return f
}

func makeExactLit(s string) exactLit {
	l := exactLit{b: []byte(s)}
	for i := 1; i < len(s); i++ {
		if byteFreq(s[i]) < byteFreq(s[l.rare]) {
			l.rare = i
		}
	}
	return l
}

// minCount is the least number of bytes from set that any match of re
// consumes.
func minCount(re *syntax.Regexp, set *byteSet) int {
	switch re.Op {
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 {
			return 0
		}
		n := 0
		for _, r := range re.Rune {
			if r < utf8.RuneSelf && set.has(byte(r)) {
				n++
			}
		}
		return n
	case syntax.OpCharClass:
		for i := 0; i+1 < len(re.Rune); i += 2 {
			if re.Rune[i+1] >= utf8.RuneSelf {
				return 0
			}
			for r := re.Rune[i]; r <= re.Rune[i+1]; r++ {
				if !set.has(byte(r)) {
					return 0
				}
			}
		}
		return 1
	case syntax.OpCapture, syntax.OpPlus:
		return minCount(re.Sub[0], set)
	case syntax.OpRepeat:
		return re.Min * minCount(re.Sub[0], set)
	case syntax.OpConcat:
		n := 0
		for _, sub := range re.Sub {
			n += minCount(sub, set)
		}
		return n
	case syntax.OpAlternate:
		n := math.MaxInt
		for _, sub := range re.Sub {
			n = min(n, minCount(sub, set))
		}
		if n == math.MaxInt {
			n = 0
		}
		return n
	}
	return 0
}

func collectAlpha(re *syntax.Regexp, s *byteSet) {
	switch re.Op {
	case syntax.OpLiteral:
		for _, r := range re.Rune {
			s.addRune(r)
			if re.Flags&syntax.FoldCase != 0 {
				for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
					s.addRune(f)
				}
			}
		}
	case syntax.OpCharClass:
		for i := 0; i+1 < len(re.Rune); i += 2 {
			lo, hi := re.Rune[i], re.Rune[i+1]
			if lo < utf8.RuneSelf {
				s.addRange(int(lo), int(min(hi, utf8.RuneSelf-1)))
			}
			if hi >= utf8.RuneSelf {
				s.addHigh()
			}
		}
	case syntax.OpAnyChar:
		*s = byteSet{^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0)}
	case syntax.OpAnyCharNotNL:
		*s = byteSet{^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0)}
		s[0] &^= 1 << '\n'
	}
	for _, sub := range re.Sub {
		collectAlpha(sub, s)
	}
}

func noAnchor() nodeInfo { return nodeInfo{bestCost: math.Inf(1)} }

func (a *analyzer) node(re *syntax.Regexp) nodeInfo {
	switch re.Op {
	case syntax.OpNoMatch:
		// Never matches: the empty set of literals is a correct anchor.
		return nodeInfo{exactOK: true, exact: []lit{}, bestCost: math.Inf(1)}
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText,
		syntax.OpEndText, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		// Assertions consume nothing; dropping them only widens the set of
		// texts the prefilter lets through.
		return nodeInfo{exactOK: true, exact: []lit{{}}, bestCost: math.Inf(1)}
	case syntax.OpLiteral:
		info := noAnchor()
		info.minLen = len(re.Rune)
		fold := re.Flags&syntax.FoldCase != 0
		if slices.Contains(re.Rune, utf8.RuneError) {
			return info // U+FFFD also matches invalid bytes; cannot search literally
		}
		l := normLit(lit{s: string(re.Rune), fold: fold})
		info.exact, info.exactOK = []lit{l}, true
		if len(re.Rune) == 1 && !l.fold && re.Rune[0] < utf8.RuneSelf {
			info.cls.add(byte(re.Rune[0]))
			info.clsOK = true
		}
		return info
	case syntax.OpCharClass:
		info := noAnchor()
		info.minLen = 1
		n, ascii := 0, true
		for i := 0; i+1 < len(re.Rune); i += 2 {
			n += int(re.Rune[i+1]-re.Rune[i]) + 1
			if re.Rune[i+1] >= utf8.RuneSelf {
				ascii = false
			}
		}
		if !ascii {
			return info
		}
		for i := 0; i+1 < len(re.Rune); i += 2 {
			info.cls.addRange(int(re.Rune[i]), int(re.Rune[i+1]))
		}
		info.clsOK = true
		if n <= 8 {
			info.exactOK = true
			for i := 0; i+1 < len(re.Rune); i += 2 {
				for r := re.Rune[i]; r <= re.Rune[i+1]; r++ {
					info.exact = append(info.exact, lit{s: string(r)})
				}
			}
		}
		return info
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		info := noAnchor()
		info.minLen = 1
		return info
	case syntax.OpCapture:
		return a.node(re.Sub[0])
	case syntax.OpStar, syntax.OpQuest:
		return noAnchor()
	case syntax.OpPlus:
		return a.repeat(a.node(re.Sub[0]), 1)
	case syntax.OpRepeat:
		sub := a.node(re.Sub[0])
		if re.Min == 1 && re.Max == 1 {
			return sub
		}
		return a.repeat(sub, re.Min)
	case syntax.OpConcat:
		return a.concat(re.Sub)
	case syntax.OpAlternate:
		return a.alternate(re.Sub)
	}
	return noAnchor()
}

func (a *analyzer) repeat(sub nodeInfo, minRep int) nodeInfo {
	if minRep < 1 {
		return noAnchor()
	}
	info := noAnchor()
	info.minLen = sub.minLen * minRep
	info.best, info.bestCost = sub.best, sub.bestCost
	if sub.exactOK && !hasEmpty(sub.exact) {
		if c := a.litsCost(sub.exact); c < info.bestCost {
			info.best, info.bestCost = anchor{lits: sub.exact}, c
		}
	}
	if sub.clsOK {
		a.offerRun(&info, sub.cls, minRep)
	}
	return info
}

func (a *analyzer) offerRun(info *nodeInfo, set byteSet, k int) {
	if c := a.runCost(set, k); c < info.bestCost {
		info.best, info.bestCost = anchor{runs: []classRun{{set: set, k: k}}}, c
	}
}

func (a *analyzer) offerLits(info *nodeInfo, ls []lit, before int) {
	if hasEmpty(ls) {
		return
	}
	if c := a.litsCost(ls); c < info.bestCost {
		info.best, info.bestCost = anchor{lits: ls, before: before}, c
	}
}

func (a *analyzer) concat(subs []*syntax.Regexp) nodeInfo {
	info := noAnchor()
	info.exactOK = true
	info.exact = []lit{{}}
	cur := []lit{{}} // cross product of the current run of exact children
	curAt := 0       // max width of the children before cur's first one
	pre := 0         // max width of the children before sub
	var run byteSet  // current run of consecutive single-byte class children
	runLen := 0
	for _, sub := range subs {
		si := a.node(sub)
		w := maxWidth(sub)
		info.minLen += si.minLen
		if si.bestCost < info.bestCost {
			info.best, info.bestCost = si.best, si.bestCost
			info.best.before = addWidth(pre, si.best.before)
		}
		if si.clsOK {
			run.union(&si.cls)
			runLen++
		} else if !zeroWidth(sub.Op) {
			if runLen > 1 {
				a.offerRun(&info, run, runLen)
			}
			run, runLen = byteSet{}, 0
		}
		if si.exactOK {
			if next, ok := cross(cur, si.exact); ok {
				// A prefix needs fewer searches than its extensions.
				a.offerLits(&info, cur, curAt)
				cur = next
			} else {
				a.offerLits(&info, cur, curAt)
				cur, curAt = si.exact, pre
			}
			if info.exactOK {
				if next, ok := cross(info.exact, si.exact); ok {
					info.exact = next
				} else {
					info.exactOK, info.exact = false, nil
				}
			}
		} else {
			a.offerLits(&info, cur, curAt)
			cur, curAt = []lit{{}}, addWidth(pre, w)
			info.exactOK, info.exact = false, nil
		}
		pre = addWidth(pre, w)
	}
	if runLen > 1 {
		a.offerRun(&info, run, runLen)
	}
	a.offerLits(&info, cur, curAt)
	return info
}

func (a *analyzer) alternate(subs []*syntax.Regexp) nodeInfo {
	info := nodeInfo{exactOK: true, minLen: math.MaxInt}
	var union anchor
	cost := 0.0
	for _, sub := range subs {
		si := a.node(sub)
		info.minLen = min(info.minLen, si.minLen)
		if info.exactOK && si.exactOK && len(info.exact)+len(si.exact) <= maxExact {
			info.exact = append(info.exact, si.exact...)
		} else {
			info.exactOK, info.exact = false, nil
		}
		b, c := si.best, si.bestCost
		if si.exactOK && !hasEmpty(si.exact) {
			if ec := a.litsCost(si.exact); ec < c {
				b, c = anchor{lits: si.exact}, ec
			}
		}
		cost += c
		union.lits = append(union.lits, b.lits...)
		union.runs = append(union.runs, b.runs...)
		if union.before >= 0 {
			union.before = max(union.before, b.before)
			if b.before < 0 {
				union.before = unbounded
			}
		}
	}
	if len(subs) == 0 {
		info.minLen = 0
	}
	info.best, info.bestCost = union, cost
	if math.IsInf(cost, 1) {
		info.best = anchor{}
	}
	return info
}

// cross concatenates every string of x with every string of y, or reports
// that the result would be too large or would mix folded and exact text.
func cross(x, y []lit) ([]lit, bool) {
	if len(x)*len(y) > maxExact {
		return nil, false
	}
	out := make([]lit, 0, len(x)*len(y))
	for _, p := range x {
		for _, q := range y {
			if len(p.s)+len(q.s) > maxExactLen {
				return nil, false
			}
			l := lit{s: p.s + q.s, fold: p.fold || q.fold}
			if (p.fold && !q.fold && foldable(q.s)) || (q.fold && !p.fold && foldable(p.s)) {
				return nil, false
			}
			out = append(out, normLit(l))
		}
	}
	return out, true
}

// foldable reports whether case folding changes what s matches.
func foldable(s string) bool {
	for _, r := range s {
		if unicode.SimpleFold(r) != r {
			return true
		}
	}
	return false
}

func normLit(l lit) lit {
	if l.fold && !foldable(l.s) {
		l.fold = false
	}
	return l
}

// zeroWidth reports ops that consume no input, so a run of classes around
// them is still a run of consecutive bytes.
func zeroWidth(op syntax.Op) bool {
	switch op {
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText,
		syntax.OpEndText, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return true
	}
	return false
}

func hasEmpty(ls []lit) bool {
	for _, l := range ls {
		if l.s == "" {
			return true
		}
	}
	return false
}

// byteFreq is a rough frequency of a byte in tool output (prose, code,
// listings); it only ranks anchors.
func byteFreq(b byte) float64 {
	switch {
	case b == ' ':
		return 0.15
	case b >= 'a' && b <= 'z':
		return letterFreq[b-'a']
	case b >= 'A' && b <= 'Z':
		return 0.004
	case b >= '0' && b <= '9':
		return 0.01
	case b == '\n' || b == '.' || b == ',' || b == '"' || b == '/':
		return 0.015
	case b == '-' || b == '_' || b == ':' || b == '\t' || b == '=':
		return 0.008
	}
	return 0.002
}

// letterFreq is English letter frequency scaled to the share of letters in
// running text.
var letterFreq = [26]float64{
	0.049, 0.009, 0.017, 0.026, 0.076, 0.013, 0.012, 0.037, 0.042, 0.001, 0.005, 0.024, 0.014,
	0.040, 0.045, 0.011, 0.001, 0.036, 0.038, 0.055, 0.017, 0.006, 0.014, 0.001, 0.012, 0.001,
}

func (a *analyzer) litsCost(ls []lit) float64 {
	c := 0.0
	for _, l := range ls {
		f := 1.0
		scan := 1.0
		if l.fold {
			fl, ok := makeFoldLit(l.s)
			if !ok {
				return math.Inf(1)
			}
			scan = float64(len(fl.encs)) + textLen*fl.freq()*0.002
			for _, r := range fl.runes {
				g := 0.0
				for _, o := range orbit(r) {
					if o < utf8.RuneSelf {
						g += byteFreq(byte(o))
					} else {
						g += 0.001
					}
				}
				f *= min(g, 1)
			}
		} else {
			el := makeExactLit(l.s)
			scan += textLen * byteFreq(l.s[el.rare]) * 0.002
			for i := 0; i < len(l.s); i++ {
				f *= byteFreq(l.s[i])
			}
		}
		c += scan + textLen*f*a.verify
	}
	return c
}

func (a *analyzer) runCost(set byteSet, k int) float64 {
	f := 0.0
	for b := 0; b < 128; b++ {
		if set.has(byte(b)) {
			f += byteFreq(byte(b))
		}
	}
	f = min(f, 1)
	stride := float64(textLen) / float64(k)
	return stride/100 + stride*f*0.03 + textLen*math.Pow(f, float64(k))*a.verify
}

func orbit(r rune) []rune {
	o := []rune{r}
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		o = append(o, f)
	}
	return o
}

// makeFoldLit picks the rune of s whose spellings are rarest. Every
// spelling in the fold orbit is searched, including non-ASCII ones: (?i)k
// also matches U+212A KELVIN SIGN and (?i)s matches U+017F LONG S.
func makeFoldLit(s string) (foldLit, bool) {
	f := foldLit{runes: []rune(s), at: -1}
	best := math.Inf(1)
	for i, r := range f.runes {
		fr := 0.0
		for _, o := range orbit(r) {
			if o < utf8.RuneSelf {
				fr += byteFreq(byte(o))
			} else {
				fr += 0.001
			}
		}
		if fr < best {
			best, f.at = fr, i
		}
	}
	if f.at < 0 {
		return f, false
	}
	for _, o := range orbit(f.runes[f.at]) {
		f.encs = append(f.encs, utf8.AppendRune(nil, o))
		if o < utf8.RuneSelf {
			f.ascii = append(f.ascii, byte(o))
		}
	}
	for _, r := range f.runes {
		if r >= utf8.RuneSelf {
			f.lower, f.mask, f.ascii, f.exotic = nil, nil, nil, nil
			break
		}
		l, m := byte(unicode.ToLower(r)), byte(0)
		if 'a' <= l && l <= 'z' {
			m = 0x20
		}
		f.lower, f.mask = append(f.lower, l), append(f.mask, m)
		for _, o := range orbit(r) {
			e := utf8.AppendRune(nil, o)
			if o >= utf8.RuneSelf && !slices.ContainsFunc(f.exotic, func(x []byte) bool { return bytes.Equal(x, e) }) {
				f.exotic = append(f.exotic, e)
			}
		}
	}
	return f, true
}

// asciiOnly reports whether f can be compared byte by byte in text: f is
// ASCII and text holds none of the non-ASCII runes f's runes fold to.
func (f *foldLit) asciiOnly(text []byte) bool {
	if f.lower == nil {
		return false
	}
	for _, e := range f.exotic {
		if bytes.Contains(text, e) {
			return false
		}
	}
	return true
}

// asciiMatchAt is matchAt for an ASCII-only search: the literal at
// text[a-f.at:], byte by byte.
func (f *foldLit) asciiMatchAt(text []byte, a int) (start, end int, ok bool) {
	start, end = a-f.at, a-f.at+len(f.lower)
	if start < 0 || end > len(text) {
		return 0, 0, false
	}
	for i, c := range text[start:end] {
		if c|f.mask[i] != f.lower[i] {
			return 0, 0, false
		}
	}
	return start, end, true
}

func (f *foldLit) freq() float64 {
	fr := 0.0
	for _, e := range f.encs {
		if len(e) == 1 {
			fr += byteFreq(e[0])
		} else {
			fr += 0.001
		}
	}
	return fr
}

// window is a run [l, r) of alpha bytes that holds an anchor occurrence.
type window struct{ l, r int }

// findAll appends to dst the non-empty matches of p in text, as a single
// FindAllIndex over text would report them.
func (p *pattern) findAll(text []byte, dst [][2]int, wins []window, rc *runCache) ([][2]int, []window) {
	if !p.pf.ok {
		return appendLocs(dst, p.re, text, 0), wins
	}
	if len(text) < p.pf.minLen || !p.pf.mayMatch(text) || p.pf.digit && !rc.hasDigit(text) {
		return dst, wins // most strings and numbers in a document are short
	}
	if p.at != nil {
		return p.findAnchored(text, dst, wins)
	}
	wins = p.pf.windows(text, wins[:0], rc)
	if len(wins) == 0 {
		return dst, wins
	}
	slices.SortFunc(wins, func(x, y window) int { return x.l - y.l })
	wins = slices.Compact(wins)
	covered := 0
	for _, w := range wins {
		covered += w.r - w.l
	}
	if covered > len(text)/2 {
		return appendLocs(dst, p.re, text, 0), wins
	}
	for _, w := range wins {
		lo, hi := max(w.l-1, 0), min(w.r+1, len(text))
		dst = appendLocs(dst, p.re, text[lo:hi], lo)
	}
	return dst, wins
}

func appendLocs(dst [][2]int, re *regexp.Regexp, text []byte, off int) [][2]int {
	for _, loc := range re.FindAllIndex(text, -1) {
		if loc[1] > loc[0] { // an empty match holds no data to redact
			dst = append(dst, [2]int{loc[0] + off, loc[1] + off})
		}
	}
	return dst
}

// windows appends the alpha runs around every anchor occurrence in text.
// Each run is scanned once per anchor literal, so the work is linear.
func (pf *prefilter) windows(text []byte, dst []window, rc *runCache) []window {
	pf.eachLit(text, func(a, b int) int {
		var next int
		dst, next = pf.add(text, dst, a, b, nil)
		return next
	})
	for _, run := range pf.runs {
		dst = pf.runWindows(text, dst, run, rc)
	}
	return dst
}

// occurrences appends every occurrence [l, r) of the anchor literals,
// overlapping ones included, literal by literal.
func (pf *prefilter) occurrences(text []byte, dst []window) []window {
	pf.eachLit(text, func(a, b int) int {
		dst = append(dst, window{a, b})
		return a + 1
	})
	return dst
}

// eachLit calls found with each occurrence [a, b) of an anchor literal
// that the search reaches; found returns the offset where the search for
// the next occurrence of the same literal resumes (> a).
func (pf *prefilter) eachLit(text []byte, found func(a, b int) int) {
	for _, l := range pf.lits {
		fails := 0
		for off := 0; off+len(l.b) <= len(text); {
			var a int
			if len(l.b) > 1 && fails > 8+off>>6 {
				// The "rare" byte is common in this text; bytes.Index
				// checks two bytes at a time with SIMD instead.
				a = bytes.Index(text[off:], l.b)
			} else {
				a = bytes.IndexByte(text[off+l.rare:len(text)-len(l.b)+l.rare+1], l.b[l.rare])
			}
			if a < 0 {
				break
			}
			a += off
			if !bytes.Equal(text[a:a+len(l.b)], l.b) {
				fails++
				off = a + 1
				continue
			}
			off = found(a, a+len(l.b))
		}
	}
	for fi := range pf.folds {
		pf.foldOccurrences(text, &pf.folds[fi], found)
	}
}

// add records the alpha run around [a, b) and returns where the search for
// the next occurrence resumes. A run shorter than any match, or with fewer
// bytes of run.set than any match needs, cannot hold a match.
func (pf *prefilter) add(text []byte, dst []window, a, b int, run *classRun) ([]window, int) {
	l, r := a, b
	for l > 0 && pf.inAlpha[text[l-1]] {
		l--
	}
	for r < len(text) && pf.inAlpha[text[r]] {
		r++
	}
	ok := r-l >= pf.minLen
	if ok && run != nil && run.need > 0 {
		n := 0
		for _, c := range text[l:r] {
			if run.in[c] {
				n++
			}
		}
		ok = n >= run.need
	}
	if ok {
		dst = append(dst, window{l, r})
	}
	return dst, max(r, a+1)
}

func (pf *prefilter) foldOccurrences(text []byte, f *foldLit, found func(a, b int) int) {
	if f.asciiOnly(text) {
		// One pass per spelling of the rare letter; found does not need
		// the occurrences in order.
		for _, e := range f.ascii {
			for off := f.at; off < len(text); {
				i := bytes.IndexByte(text[off:], e)
				if i < 0 {
					break
				}
				a := off + i
				start, end, ok := f.asciiMatchAt(text, a)
				if !ok {
					off = a + 1
					continue
				}
				off = max(found(start, end)+f.at, a+1)
			}
		}
		return
	}
	// next[i] caches the next occurrence of encs[i] at or after off
	// (-2: not searched yet, -1: none left), so each spelling's search
	// moves forward only and the whole loop stays linear.
	var buf [4]int
	next := buf[:0]
	for range f.encs {
		next = append(next, -2)
	}
	for off := 0; off < len(text); {
		a, w := -1, 0
		for i, e := range f.encs {
			if next[i] != -1 && next[i] < off {
				next[i] = indexFrom(text, off, e)
			}
			if next[i] >= 0 && (a < 0 || next[i] < a) {
				a, w = next[i], len(e)
			}
		}
		if a < 0 {
			break
		}
		start, end, ok := f.matchAt(text, a, w)
		if !ok {
			off = a + 1
			continue
		}
		off = max(found(start, end), a+1)
	}
}

func indexFrom(text []byte, off int, b []byte) int {
	i := bytes.Index(text[off:], b)
	if i < 0 {
		return -1
	}
	return off + i
}

// matchAt reports whether the folded literal occurs with its anchor rune
// spelled by text[a:a+w], and where. Runes are decoded one at a time in
// both directions, as the regexp decodes them, so multi-byte fold partners
// are honoured.
func (f *foldLit) matchAt(text []byte, a, w int) (start, end int, ok bool) {
	end = a + w
	for _, want := range f.runes[f.at+1:] {
		r, w := utf8.DecodeRune(text[end:])
		if w == 0 || !foldEq(r, want) {
			return 0, 0, false
		}
		end += w
	}
	start = a
	for i := f.at - 1; i >= 0; i-- {
		r, w := utf8.DecodeLastRune(text[:start])
		if w == 0 || !foldEq(r, f.runes[i]) {
			return 0, 0, false
		}
		start -= w
	}
	return start, end, true
}

func foldEq(r, want rune) bool {
	if r == want {
		return true
	}
	if r < utf8.RuneSelf && want < utf8.RuneSelf {
		// Two ASCII runes fold alike only as the two cases of a letter (the
		// orbits of k and s also hold U+212A and U+017F, which are not
		// ASCII). Prose is full of the letters fold anchors are made of,
		// and each candidate is rejected here at its first rune.
		l := r | 0x20
		return l == want|0x20 && 'a' <= l && l <= 'z'
	}
	for f := unicode.SimpleFold(want); f != want; f = unicode.SimpleFold(f) {
		if f == r {
			return true
		}
	}
	return false
}

// runWindows finds runs of at least k bytes of run.set.
func (pf *prefilter) runWindows(text []byte, dst []window, run classRun, rc *runCache) []window {
	var runs []window
	if rc != nil && run.shared >= 0 {
		runs = rc.get(text, run.shared)
	} else {
		var buf [16]window
		runs = classRuns(text, run.in, run.k, buf[:0])
	}
	next := 0
	for _, r := range runs {
		// A run inside the alpha run of the last window adds nothing.
		if r.r-r.l < run.k || r.l < next {
			continue
		}
		dst, next = pf.add(text, dst, r.l, r.r, &run)
	}
	return dst
}

// classRuns appends the maximal runs of at least k bytes of set. Checking
// every k-th byte is enough: any k consecutive bytes include one checked
// position.
func classRuns(text []byte, in *[256]bool, k int, dst []window) []window {
	for i := k - 1; i < len(text); {
		if !in[text[i]] {
			i += k
			continue
		}
		lo, hi := i, i+1
		for lo > 0 && in[text[lo-1]] {
			lo--
		}
		for hi < len(text) && in[text[hi]] {
			hi++
		}
		if hi-lo >= k {
			dst = append(dst, window{lo, hi})
		}
		// text[hi] is not in set, so the next run's k-th byte is at
		// hi+k or later.
		i = hi + k
	}
	return dst
}

// sharedRun is a byte class that several patterns of a scanner search
// runs of; k is the shortest run any of them needs.
type sharedRun struct {
	set byteSet
	in  *[256]bool // set as a table
	k   int
}

// runCache holds the runs of each shared class in the text being scanned,
// so that the text is searched once per class rather than once per
// pattern (an SSN and a card-number pattern both look for digit runs).
type runCache struct {
	sets []sharedRun
	runs [][]window
	done []bool
	// digit is whether the text holds an ASCII digit: 0 not yet known, 1
	// yes, 2 no.
	digit uint8
}

// reset forgets the runs of the previous text.
func (rc *runCache) reset(sets []sharedRun) {
	rc.sets = sets
	for len(rc.runs) < len(sets) {
		rc.runs = append(rc.runs, nil)
		rc.done = append(rc.done, false)
	}
	clear(rc.done)
	rc.digit = 0
}

// hasDigit is hasDigit(text), computed once per text; a nil cache computes
// it every time.
func (rc *runCache) hasDigit(text []byte) bool {
	if rc == nil {
		return hasDigit(text)
	}
	if rc.digit == 0 {
		rc.digit = 2
		if hasDigit(text) {
			rc.digit = 1
		}
	}
	return rc.digit == 1
}

func (rc *runCache) get(text []byte, i int) []window {
	if !rc.done[i] {
		rc.runs[i] = classRuns(text, rc.sets[i].in, rc.sets[i].k, rc.runs[i][:0])
		rc.done[i] = true
	}
	return rc.runs[i]
}

// shareRuns gives the class runs that more than one pattern searches a
// shared index, so that runCache searches each class once per text.
func shareRuns(patterns []pattern) []sharedRun {
	var sets []sharedRun
	users := map[byteSet]int{}
	for _, p := range patterns {
		for _, r := range p.pf.runs {
			users[r.set]++
		}
	}
	for pi := range patterns {
		runs := patterns[pi].pf.runs
		for ri := range runs {
			if users[runs[ri].set] < 2 {
				continue
			}
			i := slices.IndexFunc(sets, func(sr sharedRun) bool { return sr.set == runs[ri].set })
			if i < 0 {
				i = len(sets)
				sets = append(sets, sharedRun{set: runs[ri].set, in: runs[ri].in, k: runs[ri].k})
			}
			sets[i].k = min(sets[i].k, runs[ri].k)
			runs[ri].shared = i
		}
	}
	return sets
}
