package proxy

import (
	"strings"
	"testing"

	"github.com/agentid/agentid/dlp"
	"github.com/agentid/agentid/policy"
)

func TestStderrFilterRedactsLinesSplitAcrossWrites(t *testing.T) {
	s, err := dlp.New(&policy.DLP{Patterns: []policy.DLPPattern{{Name: "AWS Key", Regex: "AKIA[A-Z0-9]{16}"}}})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	f := StderrFilter(&out, s)
	key := "AKIA" + "IOSFODNN7EXAMPLE"
	for _, chunk := range []string{"debug: key=" + key[:6], key[6:] + "\nsecond line\npartial " + key} {
		if _, err := f.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	want := "debug: key=[REDACTED:AWS Key]\nsecond line\npartial [REDACTED:AWS Key]"
	if out.String() != want {
		t.Fatalf("got %q, want %q", out.String(), want)
	}
}

func TestStderrFilterRedactsASecretStraddlingTheLineCap(t *testing.T) {
	s, err := dlp.New(&policy.DLP{Patterns: []policy.DLPPattern{{Name: "AWS Key", Regex: "AKIA[A-Z0-9]{16}"}}})
	if err != nil {
		t.Fatal(err)
	}
	key := "AKIA" + "IOSFODNN7EXAMPLE"
	// The key crosses the point where a long line is first written out,
	// written in the 32 KiB pieces os/exec copies stderr in.
	for _, at := range []int{maxStderrLine - 10, maxStderrLine - 1, 2*maxStderrLine - 5} {
		line := strings.Repeat("p", at) + key + strings.Repeat("q", maxStderrLine) + "\nnext " + key + "\n"
		var out strings.Builder
		f := StderrFilter(&out, s)
		for rest := line; rest != ""; {
			n := min(32<<10, len(rest))
			if _, err := f.Write([]byte(rest[:n])); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		want := strings.ReplaceAll(line, key, "[REDACTED:AWS Key]")
		if got := out.String(); got != want {
			t.Errorf("key at %d: output differs (%d bytes, want %d); key left: %v", at, len(got), len(want), strings.Contains(got, key))
		}
	}
}
