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
}

// Report collects the results of a run.
type Report struct {
	Results                 []Result
	Passed, Failed, Skipped int
	// Notes are suite-level remarks, e.g. a level directory that is absent.
	Notes []string
}

// Summary is the closing line: "N passed, M failed, K skipped".
func (r *Report) Summary() string {
	return fmt.Sprintf("%d passed, %d failed, %d skipped", r.Passed, r.Failed, r.Skipped)
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
				var v vector
				if err := json.Unmarshal(raw, &v); err != nil {
					return nil, fmt.Errorf("conformance: %s: %w", rel, err)
				}
				if len(only) > 0 && !only[v.ID] {
					continue
				}
				res := Result{File: rel, ID: v.ID}
				res.Status, res.Reason = runVector(ctx, l, raw, &v)
				rep.add(res)
			}
		}
	}
	return rep, nil
}

func (r *Report) add(res Result) {
	r.Results = append(r.Results, res)
	switch res.Status {
	case Pass:
		r.Passed++
	case Fail:
		r.Failed++
	default:
		r.Skipped++
	}
}

// Write prints failures and skips with their reasons (every result when
// verbose), the notes, and the summary line last.
func (r *Report) Write(w io.Writer, verbose bool) {
	for _, res := range r.Results {
		if res.Status == Pass && !verbose {
			continue
		}
		if res.Reason != "" {
			fmt.Fprintf(w, "%s %s %s: %s\n", res.Status, res.File, res.ID, res.Reason)
		} else {
			fmt.Fprintf(w, "%s %s %s\n", res.Status, res.File, res.ID)
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	fmt.Fprintln(w, r.Summary())
}

// runVector dispatches one vector to the harness for its level.
func runVector(ctx context.Context, level string, raw json.RawMessage, v *vector) (Status, string) {
	switch {
	case level == "server":
		return Skip, "the HTTP validation server (level server) is not part of this build yet"
	case level == "identity" || v.needsIdentity():
		return runIdentityVector(ctx, raw, v)
	case v.Input == nil || v.Expected == nil:
		return Fail, "vector has no input or expected section"
	}
	return runProxyVector(ctx, v)
}
