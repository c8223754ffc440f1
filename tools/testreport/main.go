// Command testreport reads the output of `go test -json` and prints what a
// plain `go test` would (every failed test with its log, one line per
// package), then writes a summary that plain go test does not give: how many
// packages and tests passed, failed and were skipped, and each skipped test
// with its package and reason. scripts/test.sh runs it:
//
//	go test -json ./... 2>&1 | go run ./tools/testreport -summary FILE -packages FILE
//
// Subtests and fuzz seed inputs count as tests. A test that never reports a
// result (its package panicked or timed out) counts as failed. Lines that are
// not JSON, such as errors of the go command itself, are passed through.
// The exit status is 1 when a test or package failed.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

func main() {
	summary := flag.String("summary", "", "write the counts and the skipped tests to `file`")
	packages := flag.String("packages", "", "write one line per package, \"ok|FAIL|none PACKAGE\", to `file`")
	flag.Parse()

	r := newReport(os.Stdout)
	if err := r.read(os.Stdin); err != nil {
		fmt.Fprintln(os.Stderr, "testreport:", err)
		os.Exit(2)
	}
	r.finish()
	if *summary != "" {
		if err := writeFile(*summary, r.writeSummary); err != nil {
			fmt.Fprintln(os.Stderr, "testreport:", err)
			os.Exit(2)
		}
	}
	if *packages != "" {
		if err := writeFile(*packages, r.writePackages); err != nil {
			fmt.Fprintln(os.Stderr, "testreport:", err)
			os.Exit(2)
		}
	}
	if r.failed() {
		os.Exit(1)
	}
}

func writeFile(name string, write func(io.Writer)) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	write(w)
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// event is one line of `go test -json` (see `go doc cmd/test2json`).
type event struct {
	Action      string
	Package     string
	Test        string
	Output      string
	ImportPath  string // build-output and build-fail events
	FailedBuild string
}

// test is a (sub)test whose result is not known yet, or a failed subtest
// waiting for its parent to print it.
type test struct {
	lines    []string // its own output, without the === and --- lines
	header   string   // its "--- FAIL" line
	children []*test  // failed subtests, in the order they ended
}

type skip struct {
	pkg, test, reason string
}

type report struct {
	out     io.Writer
	running map[[2]string]*test // by package and test name
	pkgOut  map[string][]string // package-level output, printed at its end
	pkgs    map[string]string   // package -> "ok", "FAIL" or "none"
	pkgSeen []string

	passed, failedTests int
	skips               []skip
}

func newReport(out io.Writer) *report {
	return &report{out: out, running: map[[2]string]*test{}, pkgOut: map[string][]string{}, pkgs: map[string]string{}}
}

// read consumes the whole stream.
func (r *report) read(in io.Reader) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil || e.Action == "" {
			fmt.Fprintf(r.out, "%s\n", line)
			continue
		}
		r.event(e)
	}
	return sc.Err()
}

func (r *report) event(e event) {
	switch e.Action {
	case "build-output":
		io.WriteString(r.out, e.Output)
		return
	case "build-fail", "start", "pause", "cont", "bench":
		return
	}
	if e.Test == "" {
		r.packageEvent(e)
		return
	}
	key := [2]string{e.Package, e.Test}
	t := r.running[key]
	if t == nil {
		t = &test{}
		r.running[key] = t
	}
	switch e.Action {
	case "output":
		switch o := strings.TrimLeft(e.Output, " "); {
		case hasAnyPrefix(o, "=== RUN ", "=== PAUSE ", "=== CONT ", "=== NAME "):
		case hasAnyPrefix(o, "--- PASS: ", "--- FAIL: ", "--- SKIP: "):
			t.header = strings.TrimRight(o, "\n")
		default:
			t.lines = append(t.lines, strings.TrimRight(e.Output, "\n"))
		}
	case "pass":
		r.passed++
		delete(r.running, key)
	case "skip":
		r.skips = append(r.skips, skip{e.Package, e.Test, reason(t.lines)})
		delete(r.running, key)
	case "fail":
		r.failedTests++
		delete(r.running, key)
		r.failedTest(e.Package, e.Test, t)
	}
}

func hasAnyPrefix(s string, prefixes ...string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// failedTest prints a failed top-level test, or hands a failed subtest to
// its parent, which prints it indented below its own lines as go test does.
func (r *report) failedTest(pkg, name string, t *test) {
	if t.header == "" {
		t.header = "--- FAIL: " + name
	}
	if i := strings.LastIndexByte(name, '/'); i > 0 {
		if p := r.running[[2]string{pkg, name[:i]}]; p != nil {
			p.children = append(p.children, t)
			return
		}
	}
	t.print(r.out, "")
}

func (t *test) print(w io.Writer, indent string) {
	fmt.Fprintf(w, "%s%s\n", indent, t.header)
	for _, l := range t.lines {
		fmt.Fprintf(w, "%s%s\n", indent, l)
	}
	for _, c := range t.children {
		c.print(w, indent+"    ")
	}
}

func (r *report) packageEvent(e event) {
	switch e.Action {
	case "output":
		// Held back until the package ends, so that the output of a test
		// that never reported (a panic, a timeout) comes before the
		// package's FAIL line, as in plain go test.
		if e.Output != "PASS\n" {
			r.pkgOut[e.Package] = append(r.pkgOut[e.Package], e.Output)
		}
		return
	case "pass", "fail", "skip":
	default:
		return
	}
	if _, ok := r.pkgs[e.Package]; !ok {
		r.pkgSeen = append(r.pkgSeen, e.Package)
	}
	switch e.Action {
	case "pass":
		r.pkgs[e.Package] = "ok"
	case "skip":
		r.pkgs[e.Package] = "none"
	case "fail":
		r.pkgs[e.Package] = "FAIL"
	}
	r.endPackage(e.Package, e.Action == "fail")
}

// endPackage deals with the tests of pkg that never reported a result (a
// panic or a timeout ended the test binary while they ran: failures), then
// prints the package's own output.
func (r *report) endPackage(pkg string, failed bool) {
	defer func() {
		for _, o := range r.pkgOut[pkg] {
			io.WriteString(r.out, o)
		}
		delete(r.pkgOut, pkg)
	}()
	var names []string
	for k := range r.running {
		if k[0] == pkg {
			names = append(names, k[1])
		}
	}
	sort.Strings(names)
	for _, n := range names {
		t := r.running[[2]string{pkg, n}]
		delete(r.running, [2]string{pkg, n})
		if !failed {
			continue
		}
		r.failedTests++
		if t.header == "" {
			t.header = "--- FAIL: " + n + " (no result: the test binary ended while it ran)"
		}
		t.print(r.out, "")
	}
}

// finish ends packages whose end never came (the stream was cut short).
func (r *report) finish() {
	seen := map[string]bool{}
	var pkgs []string
	for k := range r.running {
		if !seen[k[0]] {
			seen[k[0]] = true
			pkgs = append(pkgs, k[0])
		}
	}
	for p := range r.pkgOut {
		if !seen[p] {
			seen[p] = true
			pkgs = append(pkgs, p)
		}
	}
	sort.Strings(pkgs)
	for _, p := range pkgs {
		if _, ok := r.pkgs[p]; !ok {
			r.pkgSeen = append(r.pkgSeen, p)
			r.pkgs[p] = "FAIL"
		}
		r.endPackage(p, true)
	}
}

// reason is a skipped test's message: its log lines, without the file:line
// indentation, on one line.
func reason(lines []string) string {
	var parts []string
	for _, l := range lines {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	if len(parts) == 0 {
		return "(no reason given)"
	}
	return strings.Join(parts, " / ")
}

func (r *report) count(result string) int {
	n := 0
	for _, v := range r.pkgs {
		if v == result {
			n++
		}
	}
	return n
}

func (r *report) failed() bool { return r.failedTests > 0 || r.count("FAIL") > 0 }

func (r *report) writeSummary(w io.Writer) {
	fmt.Fprintf(w, "packages: %d passed, %d failed, %d without tests\n", r.count("ok"), r.count("FAIL"), r.count("none"))
	fmt.Fprintf(w, "tests: %d passed, %d failed, %d skipped\n", r.passed, r.failedTests, len(r.skips))
	for _, s := range r.skips {
		fmt.Fprintf(w, "skipped: %s %s: %s\n", s.pkg, s.test, s.reason)
	}
}

func (r *report) writePackages(w io.Writer) {
	for _, p := range r.pkgSeen {
		fmt.Fprintf(w, "%s %s\n", r.pkgs[p], p)
	}
}
