package policy

import (
	"regexp"
	"regexp/syntax"
	"unicode/utf8"
)

// argPattern is a compiled allow_args pattern. Most are written as a fixed
// prefix and a run of allowed characters (^/data/[a-z0-9_./-]+$,
// ^https://api\.example\.com/[\w/-]*$); for that shape a byte table decides,
// which costs a fraction of a regexp run on every tools/call. Anything else,
// and anything the shortcut could read differently from RE2, is matched by
// the regexp (FuzzArgPattern holds the two to the same answers).
type argPattern struct {
	re *regexp.Regexp
	// simple is set when re is ^prefix(class*|class+)?$ with an ASCII
	// class and a prefix that is neither case-folded nor U+FFFD.
	simple bool
	prefix []byte
	class  *[256]bool // nil: nothing may follow the prefix
	minRun int        // bytes of class required after the prefix: 0 or 1
}

func compileArgPattern(pattern string) (argPattern, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return argPattern{}, err
	}
	p := argPattern{re: re}
	// regexp.Compile parses with syntax.Perl: without (?m), ^ and $ are
	// the start and the end of the text.
	tree, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return p, nil
	}
	tree = tree.Simplify()
	if tree.Op != syntax.OpConcat || len(tree.Sub) < 2 ||
		tree.Sub[0].Op != syntax.OpBeginText || tree.Sub[len(tree.Sub)-1].Op != syntax.OpEndText {
		return p, nil
	}
	mid := tree.Sub[1 : len(tree.Sub)-1]
	if len(mid) > 0 && mid[0].Op == syntax.OpLiteral {
		lit := mid[0]
		for _, r := range lit.Rune {
			if r == utf8.RuneError || lit.Flags&syntax.FoldCase != 0 {
				return p, nil // U+FFFD also matches invalid bytes; folding is not byte equality
			}
			p.prefix = utf8.AppendRune(p.prefix, r)
		}
		mid = mid[1:]
	}
	if len(mid) == 1 && (mid[0].Op == syntax.OpStar || mid[0].Op == syntax.OpPlus) && mid[0].Sub[0].Op == syntax.OpCharClass {
		cls := mid[0].Sub[0].Rune
		var t [256]bool
		for i := 0; i+1 < len(cls); i += 2 {
			if cls[i+1] >= utf8.RuneSelf {
				return p, nil
			}
			for r := cls[i]; r <= cls[i+1]; r++ {
				t[r] = true
			}
		}
		p.class = &t
		if mid[0].Op == syntax.OpPlus {
			p.minRun = 1
		}
		mid = mid[1:]
	}
	p.simple = len(mid) == 0
	return p, nil
}

func (p *argPattern) match(b []byte) bool {
	if !p.simple {
		return p.re.Match(b)
	}
	return matchSimple(p, b)
}

func (p *argPattern) matchString(s string) bool {
	if !p.simple {
		return p.re.MatchString(s)
	}
	return matchSimple(p, s)
}

// matchSimple decides a simple pattern. A byte beyond ASCII after the prefix
// is never in the class, as RE2 reads it as part of a rune beyond ASCII or
// as U+FFFD, so the table decides exactly as the regexp would.
func matchSimple[T string | []byte](p *argPattern, b T) bool {
	if len(b) < len(p.prefix) || string(b[:len(p.prefix)]) != string(p.prefix) {
		return false
	}
	rest := b[len(p.prefix):]
	if p.class == nil {
		return len(rest) == 0
	}
	if len(rest) < p.minRun {
		return false
	}
	for i := 0; i < len(rest); i++ {
		if !p.class[rest[i]] {
			return false
		}
	}
	return true
}
