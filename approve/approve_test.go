package approve

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestDigestIsStableUnderKeyOrderAndWhitespace(t *testing.T) {
	want, err := Digest(testKey, "write_file", json.RawMessage(`{"path":"/tmp/x","opts":{"mode":420,"append":true},"content":"hi"}`))
	if err != nil {
		t.Fatal(err)
	}
	variants := []string{
		`{"content":"hi","opts":{"append":true,"mode":420},"path":"/tmp/x"}`,
		"{\n  \"opts\": {\"append\": true, \"mode\": 4.2e2},\n  \"path\": \"/tmp/x\",\n  \"content\": \"h\\u0069\"\n}",
	}
	for _, v := range variants {
		got, err := Digest(testKey, "write_file", json.RawMessage(v))
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("Digest(%s) = %s, want %s", v, got, want)
		}
	}
}

var testKey = bytes.Repeat([]byte{7}, DigestKeySize)

func TestDigestIsAKeyedMACOfTheJCSForm(t *testing.T) {
	got, err := Digest(testKey, "t", json.RawMessage(`{"b":"x","a":1.0}`))
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(sha256.New, testKey)
	mac.Write([]byte(`{"arguments":{"a":1,"b":"x"},"tool":"t"}`))
	if want := hex.EncodeToString(mac.Sum(nil)); got != want {
		t.Fatalf("Digest = %s, want %s", got, want)
	}
}

// Someone who sees a digest and the redacted arguments must not be able to
// recover what was redacted by trying candidates: without the key, the
// digest of the true call is not the digest they compute.
func TestDigestRevealsNothingWithoutTheKey(t *testing.T) {
	key := NewDigestKey()
	if len(key) != DigestKeySize || bytes.Equal(key, NewDigestKey()) {
		t.Fatal("NewDigestKey is not a fresh random key")
	}
	real, err := Digest(key, "unlock", json.RawMessage(`{"pin":"4821"}`))
	if err != nil {
		t.Fatal(err)
	}
	for pin := 0; pin < 10000; pin++ {
		doc := fmt.Sprintf(`{"arguments":{"pin":"%04d"},"tool":"unlock"}`, pin)
		sum := sha256.Sum256([]byte(doc))
		if hex.EncodeToString(sum[:]) == real {
			t.Fatalf("the PIN %04d was recovered from the digest", pin)
		}
	}
	again, _ := Digest(key, "unlock", json.RawMessage(`{"pin": "4821"}`))
	if again != real {
		t.Fatal("one call under one key gave two digests")
	}
	if _, err := Digest(key[:8], "unlock", nil); err == nil {
		t.Fatal("a short key was accepted")
	}
}

func TestDigestTreatsMissingArgumentsAsEmptyObject(t *testing.T) {
	want, _ := Digest(testKey, "t", json.RawMessage(`{}`))
	for _, args := range []json.RawMessage{nil, {}, json.RawMessage(" \n")} {
		if got, err := Digest(testKey, "t", args); err != nil || got != want {
			t.Errorf("Digest(%q) = %s, %v; want %s", args, got, err, want)
		}
	}
}

func TestDigestDistinguishesCalls(t *testing.T) {
	calls := [][2]string{
		{"read_file", `{"path":"/a"}`},
		{"read_file", `{"path":"/b"}`},
		{"write_file", `{"path":"/a"}`},
		{"read_file", `{"path":"/a","x":null}`},
		{"read_file", `{"path":["/a"]}`},
		{"read_file", `{"path":"/a "}`},
	}
	seen := map[string]string{}
	for _, c := range calls {
		d, err := Digest(testKey, c[0], json.RawMessage(c[1]))
		if err != nil {
			t.Fatal(err)
		}
		if len(d) != 64 || strings.ToLower(d) != d {
			t.Fatalf("digest %q is not 64 lowercase hex", d)
		}
		if prev, ok := seen[d]; ok {
			t.Fatalf("%v and %s have the same digest", c, prev)
		}
		seen[d] = fmt.Sprint(c)
	}
}

func TestDigestRejectsAmbiguousInput(t *testing.T) {
	tests := map[string]struct {
		tool string
		args string
	}{
		"invalid JSON":          {"t", `{"a":`},
		"duplicate key":         {"t", `{"a":1,"a":2}`},
		"nested duplicate key":  {"t", `{"o":{"k":1,"k":1}}`},
		"invalid UTF-8 in args": {"t", "{\"a\":\"\xff\"}"},
		"invalid UTF-8 in tool": {"t\xff", `{}`},
		"trailing data":         {"t", `{} {}`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if d, err := Digest(testKey, tc.tool, json.RawMessage(tc.args)); err == nil || !strings.HasPrefix(err.Error(), "approve: ") {
				t.Fatalf("Digest = %q, %v; want an approve: error", d, err)
			}
		})
	}
}

func TestFuncAdapterPassesThroughAndNeverFailsOpen(t *testing.T) {
	boom := errors.New("boom")
	tests := map[string]struct {
		answer  Answer
		err     error
		want    Answer
		wantErr error
	}{
		"approved":            {Approved, nil, Approved, nil},
		"denied":              {Denied, nil, Denied, nil},
		"timed out":           {TimedOut, boom, TimedOut, boom},
		"approved with error": {Approved, boom, Denied, boom},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var got Request
			f := Func(func(_ context.Context, r Request) (Answer, error) { got = r; return tc.answer, tc.err })
			a, err := f.Approve(context.Background(), Request{Tool: "x"})
			if a != tc.want || err != tc.wantErr || got.Tool != "x" {
				t.Fatalf("got %v, %v (req %+v)", a, err, got)
			}
		})
	}
}

func TestHeadlessDeniesImmediatelyWithAReason(t *testing.T) {
	a, err := Headless().Approve(context.Background(), Request{Tool: "x"})
	if a != Denied || err == nil {
		t.Fatalf("Headless = %v, %v; want Denied with an error", a, err)
	}
}

func TestDefaultNeverReturnsNil(t *testing.T) {
	a := Default()
	if a == nil {
		t.Fatal("Default returned nil")
	}
	if c, ok := a.(interface{ Close() error }); ok {
		c.Close()
	}
}

func TestAnswerString(t *testing.T) {
	for a, want := range map[Answer]string{Denied: "denied", Approved: "approved", TimedOut: "timed out", 9: "Answer(9)"} {
		if a.String() != want {
			t.Errorf("%d.String() = %q", a, a.String())
		}
	}
}

func ExampleFunc() {
	// An approver that allows read-only tools and denies everything else,
	// as a test double or an embedded policy UI would.
	readOnly := Func(func(_ context.Context, req Request) (Answer, error) {
		if strings.HasPrefix(req.Tool, "read_") {
			return Approved, nil
		}
		return Denied, nil
	})

	args := json.RawMessage(`{"path":"/etc/hosts"}`)
	digest, _ := Digest(testKey, "read_file", args)
	answer, _ := readOnly.Approve(context.Background(), Request{Tool: "read_file", Arguments: args, Digest: digest})
	fmt.Println(answer)
	answer, _ = readOnly.Approve(context.Background(), Request{Tool: "delete_file"})
	fmt.Println(answer)
	// Output:
	// approved
	// denied
}
