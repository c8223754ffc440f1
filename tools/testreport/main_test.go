package main

import (
	"strings"
	"testing"
)

// stream is `go test -json` output (times and elapsed dropped), cut down from
// a real run: a build failure, a package without tests, a package with a
// pass, a skip, nested failing subtests and a fuzz seed, and a package whose
// test binary died (a timeout) before its running test reported.
const stream = `{"ImportPath":"m/d [m/d.test]","Action":"build-output","Output":"# m/d [m/d.test]\n"}
{"ImportPath":"m/d [m/d.test]","Action":"build-output","Output":"d/d_test.go:5:33: undefined: undefined\n"}
{"ImportPath":"m/d [m/d.test]","Action":"build-fail"}
go: a line of the go command itself
{"Action":"output","Package":"m/c","Output":"?   \tm/c\t[no test files]\n"}
{"Action":"skip","Package":"m/c"}
{"Action":"output","Package":"m/d","Output":"FAIL\tm/d [build failed]\n"}
{"Action":"fail","Package":"m/d","FailedBuild":"m/d [m/d.test]"}
{"Action":"start","Package":"m/a"}
{"Action":"run","Package":"m/a","Test":"TestPass"}
{"Action":"output","Package":"m/a","Test":"TestPass","Output":"=== RUN   TestPass\n"}
{"Action":"output","Package":"m/a","Test":"TestPass","Output":"    a_test.go:5: quiet\n"}
{"Action":"output","Package":"m/a","Test":"TestPass","Output":"--- PASS: TestPass (0.00s)\n"}
{"Action":"pass","Package":"m/a","Test":"TestPass"}
{"Action":"run","Package":"m/a","Test":"TestSkip"}
{"Action":"output","Package":"m/a","Test":"TestSkip","Output":"=== RUN   TestSkip\n"}
{"Action":"output","Package":"m/a","Test":"TestSkip","Output":"    a_test.go:6: no widget here\n"}
{"Action":"output","Package":"m/a","Test":"TestSkip","Output":"--- SKIP: TestSkip (0.00s)\n"}
{"Action":"skip","Package":"m/a","Test":"TestSkip"}
{"Action":"run","Package":"m/a","Test":"TestFail"}
{"Action":"output","Package":"m/a","Test":"TestFail","Output":"=== RUN   TestFail\n"}
{"Action":"output","Package":"m/a","Test":"TestFail","Output":"    a_test.go:8: before\n"}
{"Action":"run","Package":"m/a","Test":"TestFail/sub_bad"}
{"Action":"output","Package":"m/a","Test":"TestFail/sub_bad","Output":"=== RUN   TestFail/sub_bad\n"}
{"Action":"output","Package":"m/a","Test":"TestFail/sub_bad","Output":"    a_test.go:10: boom\n"}
{"Action":"run","Package":"m/a","Test":"TestFail/sub_bad/deeper"}
{"Action":"output","Package":"m/a","Test":"TestFail/sub_bad/deeper","Output":"=== RUN   TestFail/sub_bad/deeper\n"}
{"Action":"output","Package":"m/a","Test":"TestFail/sub_bad/deeper","Output":"    a_test.go:10: deep\n"}
{"Action":"output","Package":"m/a","Test":"TestFail/sub_bad/deeper","Output":"--- FAIL: TestFail/sub_bad/deeper (0.00s)\n"}
{"Action":"fail","Package":"m/a","Test":"TestFail/sub_bad/deeper"}
{"Action":"output","Package":"m/a","Test":"TestFail/sub_bad","Output":"--- FAIL: TestFail/sub_bad (0.00s)\n"}
{"Action":"fail","Package":"m/a","Test":"TestFail/sub_bad"}
{"Action":"run","Package":"m/a","Test":"TestFail/sub_skip"}
{"Action":"output","Package":"m/a","Test":"TestFail/sub_skip","Output":"=== RUN   TestFail/sub_skip\n"}
{"Action":"output","Package":"m/a","Test":"TestFail/sub_skip","Output":"    a_test.go:11: skipped 1\n"}
{"Action":"output","Package":"m/a","Test":"TestFail/sub_skip","Output":"--- SKIP: TestFail/sub_skip (0.00s)\n"}
{"Action":"skip","Package":"m/a","Test":"TestFail/sub_skip"}
{"Action":"output","Package":"m/a","Test":"TestFail","Output":"--- FAIL: TestFail (0.00s)\n"}
{"Action":"fail","Package":"m/a","Test":"TestFail"}
{"Action":"run","Package":"m/a","Test":"FuzzX"}
{"Action":"run","Package":"m/a","Test":"FuzzX/seed#0"}
{"Action":"pass","Package":"m/a","Test":"FuzzX/seed#0"}
{"Action":"pass","Package":"m/a","Test":"FuzzX"}
{"Action":"output","Package":"m/a","Output":"FAIL\n"}
{"Action":"output","Package":"m/a","Output":"FAIL\tm/a\t0.005s\n"}
{"Action":"fail","Package":"m/a"}
{"Action":"run","Package":"m/b","Test":"TestOK"}
{"Action":"pass","Package":"m/b","Test":"TestOK"}
{"Action":"output","Package":"m/b","Output":"PASS\n"}
{"Action":"output","Package":"m/b","Output":"ok  \tm/b\t0.005s\n"}
{"Action":"pass","Package":"m/b"}
{"Action":"run","Package":"m/e","Test":"TestHangs"}
{"Action":"output","Package":"m/e","Test":"TestHangs","Output":"=== RUN   TestHangs\n"}
{"Action":"output","Package":"m/e","Test":"TestHangs","Output":"panic: test timed out after 1s\n"}
{"Action":"output","Package":"m/e","Output":"FAIL\tm/e\t1.005s\n"}
{"Action":"fail","Package":"m/e"}
`

func run(t *testing.T, in string) (out, summary, packages string, r *report) {
	t.Helper()
	var o, s, p strings.Builder
	r = newReport(&o)
	if err := r.read(strings.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	r.finish()
	r.writeSummary(&s)
	r.writePackages(&p)
	return o.String(), s.String(), p.String(), r
}

func TestReportPrintsWhatPlainGoTestPrints(t *testing.T) {
	out, _, _, _ := run(t, stream)
	want := `# m/d [m/d.test]
d/d_test.go:5:33: undefined: undefined
go: a line of the go command itself
?   	m/c	[no test files]
FAIL	m/d [build failed]
--- FAIL: TestFail (0.00s)
    a_test.go:8: before
    --- FAIL: TestFail/sub_bad (0.00s)
        a_test.go:10: boom
        --- FAIL: TestFail/sub_bad/deeper (0.00s)
            a_test.go:10: deep
FAIL
FAIL	m/a	0.005s
ok  	m/b	0.005s
--- FAIL: TestHangs (no result: the test binary ended while it ran)
panic: test timed out after 1s
FAIL	m/e	1.005s
`
	if out != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
}

func TestReportCountsAndListsSkips(t *testing.T) {
	_, summary, packages, r := run(t, stream)
	wantSummary := `packages: 1 passed, 3 failed, 1 without tests
tests: 4 passed, 4 failed, 2 skipped
skipped: m/a TestSkip: a_test.go:6: no widget here
skipped: m/a TestFail/sub_skip: a_test.go:11: skipped 1
`
	if summary != wantSummary {
		t.Errorf("summary:\n%s\nwant:\n%s", summary, wantSummary)
	}
	wantPackages := "none m/c\nFAIL m/d\nFAIL m/a\nok m/b\nFAIL m/e\n"
	if packages != wantPackages {
		t.Errorf("packages:\n%s\nwant:\n%s", packages, wantPackages)
	}
	if !r.failed() {
		t.Error("failed() = false")
	}
}

func TestReportOfAPassingRunHasNoFailure(t *testing.T) {
	_, summary, _, r := run(t, `{"Action":"run","Package":"m/b","Test":"TestOK"}
{"Action":"pass","Package":"m/b","Test":"TestOK"}
{"Action":"pass","Package":"m/b"}
`)
	if r.failed() || summary != "packages: 1 passed, 0 failed, 0 without tests\ntests: 1 passed, 0 failed, 0 skipped\n" {
		t.Errorf("failed() = %v, summary:\n%s", r.failed(), summary)
	}
}

func TestReportFailsACutShortStream(t *testing.T) {
	out, summary, _, r := run(t, `{"Action":"run","Package":"m/b","Test":"TestOK"}
{"Action":"output","Package":"m/b","Test":"TestOK","Output":"    b_test.go:1: working\n"}
`)
	if !r.failed() || !strings.Contains(summary, "packages: 0 passed, 1 failed") || !strings.Contains(out, "b_test.go:1: working") {
		t.Errorf("failed() = %v, summary:\n%s\noutput:\n%s", r.failed(), summary, out)
	}
}
