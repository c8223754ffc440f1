package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Levels in the order of spec §9.1: each includes the ones before it.
var levels = []string{"basic", "full", "extended", "identity", "server"}

// Status of one vector.
type Status string

const (
	Pass Status = "PASS"
	Fail Status = "FAIL"
	Skip Status = "SKIP"
)

// Result is the outcome of one vector, keyed by file and id (ids repeat
// across files).
type Result struct {
	File   string // relative to the suite, e.g. "basic/errors.yaml"
	ID     string
	Status Status
	Reason string // why it failed or was skipped
	// RunnerDefined, when set, says which part of what was checked the
	// runner defined or reinterpreted rather than took from the vector, and
	// why (e.g. a vector with no expectations of its own). Such a pass is
	// not counted in Passed.
	RunnerDefined string
	// Deviation, on a failure, says how the vector contradicts the spec,
	// which agentid follows instead (see deviations).
	Deviation string
}

// Report collects the results of a run.
type Report struct {
	Results []Result
	// Passed counts the vectors that passed on their own expectations;
	// RunnerDefined the passes that rest on an expectation, input or reading
	// the runner defined. Failed and Skipped count every failure and skip.
	Passed, RunnerDefined, Failed, Skipped int
	// Deviations counts the failures of vectors that contradict the spec;
	// they are in Failed too.
	Deviations int
	// Notes are suite-level remarks, e.g. a level directory that is absent.
	Notes []string
}

// Summary is the closing line: "N passed, M failed, K skipped". Passes on
// runner-defined expectations are not in N; see RunnerDefinedLine.
func (r *Report) Summary() string {
	return fmt.Sprintf("%d passed, %d failed, %d skipped", r.Passed, r.Failed, r.Skipped)
}

// Unexpected is the number of failures that are not documented
// deviations from a vector that contradicts the spec.
func (r *Report) Unexpected() int { return r.Failed - r.Deviations }

// DeviationLine names the failures of vectors that contradict the spec; ""
// when there are none.
func (r *Report) DeviationLine() string {
	var names []string
	for _, res := range r.Results {
		if res.Deviation != "" {
			names = append(names, res.File+" "+res.ID)
		}
	}
	if len(names) == 0 {
		return ""
	}
	return fmt.Sprintf("spec over vector: %d of the failures are vectors that contradict the spec, as documented: %s",
		len(names), strings.Join(names, ", "))
}

// RunnerDefinedLine names the passes on runner-defined expectations, which
// Summary does not count; "" when there are none.
func (r *Report) RunnerDefinedLine() string {
	var names []string
	for _, res := range r.Results {
		if res.Status == Pass && res.RunnerDefined != "" {
			names = append(names, res.File+" "+res.ID)
		}
	}
	if len(names) == 0 {
		return ""
	}
	return fmt.Sprintf("runner-defined: %d passed on expectations the runner defines, not counted as passed: %s",
		len(names), strings.Join(names, ", "))
}

// Options selects what to run.
type Options struct {
	// Suite is the conformance directory (holding basic/, full/, ...).
	Suite string
	// Level is basic, full, extended, identity or server; default full.
	Level string
	// Only, when set, runs just the vectors with these ids.
	Only []string
}

// Run executes the vectors of the level and the levels below it.
func Run(ctx context.Context, opts Options) (*Report, error) {
	level := opts.Level
	if level == "" {
		level = "full"
	}
	n := -1
	for i, l := range levels {
		if l == level {
			n = i
		}
	}
	if n < 0 {
		return nil, fmt.Errorf("conformance: unknown level %q (want one of %s)", level, strings.Join(levels, ", "))
	}
	if st, err := os.Stat(opts.Suite); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("conformance: suite directory %q not found", opts.Suite)
	}
	only := map[string]bool{}
	for _, id := range opts.Only {
		only[id] = true
	}
	rep := &Report{}
	for _, l := range levels[:n+1] {
		files, _ := filepath.Glob(filepath.Join(opts.Suite, l, "*.yaml"))
		sort.Strings(files)
		if len(files) == 0 {
			rep.Notes = append(rep.Notes, fmt.Sprintf("%s/: no vectors in this suite", l))
			continue
		}
		for _, path := range files {
			rel, _ := filepath.Rel(opts.Suite, path)
			rel = filepath.ToSlash(rel)
			f, err := loadFile(path)
			if err != nil {
				return nil, err
			}
			for _, raw := range f.Tests {
				var p probe
				if err := json.Unmarshal(raw, &p); err != nil {
					return nil, fmt.Errorf("conformance: %s: %w", rel, err)
				}
				if len(only) > 0 && !only[p.ID] {
					continue
				}
				o := runVector(ctx, l, raw, &p)
				rep.add(Result{File: rel, ID: p.ID, Status: o.status, Reason: o.reason, RunnerDefined: o.runnerDefined, Deviation: o.deviation})
			}
		}
	}
	return rep, nil
}

func (r *Report) add(res Result) {
	r.Results = append(r.Results, res)
	switch {
	case res.Status == Pass && res.RunnerDefined != "":
		r.RunnerDefined++
	case res.Status == Pass:
		r.Passed++
	case res.Status == Fail:
		r.Failed++
		if res.Deviation != "" {
			r.Deviations++
		}
	default:
		r.Skipped++
	}
}

// Write prints failures, skips and runner-defined passes with their reasons
// (every result when verbose), the notes, the runner-defined line, and the
// summary line last.
func (r *Report) Write(w io.Writer, verbose bool) {
	for _, res := range r.Results {
		if res.Status == Pass && res.RunnerDefined == "" && !verbose {
			continue
		}
		line := fmt.Sprintf("%s %s %s", res.Status, res.File, res.ID)
		if res.Reason != "" {
			line += ": " + res.Reason
		}
		if res.RunnerDefined != "" {
			line += " (runner-defined " + res.RunnerDefined + ")"
		}
		if res.Deviation != "" {
			line += " [the vector contradicts the spec: " + res.Deviation + "]"
		}
		fmt.Fprintln(w, line)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if l := r.RunnerDefinedLine(); l != "" {
		fmt.Fprintln(w, l)
	}
	if l := r.DeviationLine(); l != "" {
		fmt.Fprintln(w, l)
	}
	fmt.Fprintln(w, r.Summary())
}

// outcome is what running one vector gave.
type outcome struct {
	status        Status
	reason        string
	runnerDefined string // see Result.RunnerDefined
	deviation     string // see Result.Deviation
}

func failed(format string, args ...any) outcome {
	return outcome{status: Fail, reason: fmt.Sprintf(format, args...)}
}

// runVector dispatches one vector to the harness for its level.
func runVector(ctx context.Context, level string, raw json.RawMessage, p *probe) outcome {
	switch {
	case level == "server":
		return runServerVector(ctx, raw)
	case level == "identity" || p.needsIdentity():
		return runIdentityVector(ctx, raw)
	}
	return runProxyVector(ctx, raw)
}
