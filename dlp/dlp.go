package dlp

import (
	"fmt"
	"regexp"
	"regexp/syntax"

	"github.com/agentid/agentid/policy"
)

// Direction says which way a message travels, which selects the patterns
// that apply to it through their scope.
type Direction uint8

const (
	// Request is a message from the client to the server (tool arguments).
	Request Direction = iota + 1
	// Response is a message from the server to the client (tool results).
	Response
)

func (d Direction) String() string {
	switch d {
	case Request:
		return "request"
	case Response:
		return "response"
	}
	return fmt.Sprintf("Direction(%d)", uint8(d))
}

// DefaultMaxScanSize is the spec default of max_scan_size ("1MB").
const DefaultMaxScanSize = 1 << 20

// Finding reports that one pattern matched, and how many times.
type Finding struct {
	Rule  string
	Count int
}

// Scanner holds the compiled DLP configuration of one policy.
// The zero value and a nil *Scanner are disabled scanners.
type Scanner struct {
	enabled        bool
	scanRequests   bool
	scanResponses  bool
	detectEncoding bool
	filterStderr   bool
	logOriginal    bool
	maxScan        int
	onRequestMatch string
	onFailure      string

	patterns []pattern
	// byDir[Request] and byDir[Response] list the indexes of the patterns
	// whose scope covers that direction, in policy order.
	byDir [3][]int
	// runSets are the byte classes whose runs several patterns search.
	runSets []sharedRun
	// cleanKeys[Request] and cleanKeys[Response] remember keys without a
	// match (see keyCache); nil in a Scanner not built by New.
	cleanKeys [3]*keyCache
}

type pattern struct {
	name string
	re   *regexp.Regexp
	pf   prefilter
	// at and atCtx are re anchored at the start of the text, atCtx after
	// one byte of context; nil unless the anchor lies a short, bounded
	// distance after every match start (see anchored.go).
	at, atCtx *regexp.Regexp
}

// compilePattern compiles one detector with its prefilter.
func compilePattern(name, expr string) (pattern, error) {
	re, err := regexp.Compile(expr)
	if err != nil {
		return pattern{}, err
	}
	// regexp.Compile parses with syntax.Perl; the prefilter must see the
	// same tree the matcher runs, or it could reject real matches.
	tree, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return pattern{}, err
	}
	p := pattern{name: name, re: re, pf: newPrefilter(tree.Simplify())}
	p.at, p.atCtx = compileAnchored(expr, &p.pf)
	return p, nil
}

// New compiles the dlp block of a policy. A nil block, or one with
// enabled: false, yields a Scanner whose Enabled reports false and whose
// methods return their input unchanged. The block is validated even when it
// is disabled, so that a broken pattern is found when the policy loads
// rather than when somebody turns DLP on.
func New(d *policy.DLP) (*Scanner, error) {
	if d == nil {
		return &Scanner{}, nil
	}
	s := &Scanner{
		enabled:        boolOr(d.Enabled, true),
		scanRequests:   boolOr(d.ScanRequests, false),
		scanResponses:  boolOr(d.ScanResponses, true),
		detectEncoding: boolOr(d.DetectEncoding, false),
		filterStderr:   boolOr(d.FilterStderr, false),
		logOriginal:    boolOr(d.LogOriginalOnFailure, false),
		maxScan:        DefaultMaxScanSize,
		onRequestMatch: stringOr(d.OnRequestMatch, policy.OnMatchBlock),
		onFailure:      stringOr(d.OnRedactionFailure, policy.OnFailureBlock),
	}
	if d.MaxScanSize != "" {
		n, err := policy.ParseSize(d.MaxScanSize)
		if err != nil {
			return nil, fmt.Errorf("dlp: max_scan_size: %w", err)
		}
		// Sizes beyond what a message can be are clamped so the value fits
		// an int on every platform.
		s.maxScan = int(min(n, 1<<31-1))
	}
	switch s.onRequestMatch {
	case policy.OnMatchBlock, policy.OnMatchRedact, policy.OnMatchWarn:
	default:
		return nil, fmt.Errorf("dlp: on_request_match: unknown value %q", s.onRequestMatch)
	}
	switch s.onFailure {
	case policy.OnFailureBlock, policy.OnFailureAllowOriginal, policy.OnFailureReject:
	default:
		return nil, fmt.Errorf("dlp: on_redaction_failure: unknown value %q", s.onFailure)
	}
	for i, p := range d.Patterns {
		if p.Name == "" {
			return nil, fmt.Errorf("dlp: patterns[%d]: name is required", i)
		}
		if p.Regex == "" {
			return nil, fmt.Errorf("dlp: pattern %q: regex is required", p.Name)
		}
		pat, err := compilePattern(p.Name, p.Regex)
		if err != nil {
			return nil, fmt.Errorf("dlp: pattern %q: %w", p.Name, err)
		}
		idx := len(s.patterns)
		s.patterns = append(s.patterns, pat)
		switch p.Scope {
		case "", policy.ScopeAll:
			s.byDir[Request] = append(s.byDir[Request], idx)
			s.byDir[Response] = append(s.byDir[Response], idx)
		case policy.ScopeRequest:
			s.byDir[Request] = append(s.byDir[Request], idx)
		case policy.ScopeResponse:
			s.byDir[Response] = append(s.byDir[Response], idx)
		default:
			return nil, fmt.Errorf("dlp: pattern %q: unknown scope %q", p.Name, p.Scope)
		}
	}
	s.runSets = shareRuns(s.patterns)
	s.cleanKeys[Request], s.cleanKeys[Response] = new(keyCache), new(keyCache)
	return s, nil
}

func boolOr(p *bool, def bool) bool {
	if p == nil {
		return def
	}
	return *p
}

func stringOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Enabled reports whether DLP is on. When it is off every method is a no-op.
func (s *Scanner) Enabled() bool { return s != nil && s.enabled }

// ScansRequests reports whether tool arguments are to be scanned before they
// are forwarded (scan_requests, default false).
func (s *Scanner) ScansRequests() bool { return s.Enabled() && s.scanRequests }

// ScansResponses reports whether tool responses are to be scanned
// (scan_responses, default true).
func (s *Scanner) ScansResponses() bool { return s.Enabled() && s.scanResponses }

// FiltersStderr reports whether the server's stderr is to be scanned
// (filter_stderr, default false).
func (s *Scanner) FiltersStderr() bool { return s.Enabled() && s.filterStderr }

// LogOriginalOnFailure reports log_original_on_failure (default false).
func (s *Scanner) LogOriginalOnFailure() bool { return s.Enabled() && s.logOriginal }

// MaxScanSize is the number of bytes of one message that are scanned
// (max_scan_size, default 1 MiB). Callers of RedactString use it to tell
// when to log the warning §3.6.3 requires.
func (s *Scanner) MaxScanSize() int {
	if s == nil || s.maxScan == 0 {
		return DefaultMaxScanSize
	}
	return s.maxScan
}

// patternsFor returns the indexes of the patterns that apply to dir, or nil
// when the scanner is disabled. The scan_requests and scan_responses
// switches are deliberately not consulted: they decide whether the proxy
// scans a message at all, and callers such as the audit log redact
// arguments whatever they say.
func (s *Scanner) patternsFor(dir Direction) []int {
	if !s.Enabled() || (dir != Request && dir != Response) {
		return nil
	}
	return s.byDir[dir]
}
