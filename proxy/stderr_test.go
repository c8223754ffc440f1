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
