package agentcard

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/agentid/agentid/internal/strictjson"
)

// TestScanStrictDecodesKeysLikeEncodingJSON checks the keys the strict
// scanner decodes, escapes and all, against encoding/json.
func TestScanStrictDecodesKeysLikeEncodingJSON(t *testing.T) {
	for _, key := range []string{
		`plain`, ``, `a\"b\\c\/d`, `\b\f\n\r\t`, `\u0041\u00e9\u20AC\u20ac`, `\u0000`,
		`\ud83d\ude00!`, `\uD83D\uDE00`, `日本\n語`, `\\u0041`, `x\u00e9y\u00e9z`,
	} {
		doc := []byte(`{"` + key + `":1}`)
		members, err := scanStrict(doc)
		if err != nil || len(members) != 1 {
			t.Fatalf("scanStrict(%s) = %v, %v", doc, members, err)
		}
		var m map[string]int
		if err := json.Unmarshal(doc, &m); err != nil {
			t.Fatal(err)
		}
		if _, ok := m[members[0].key]; !ok || len(m) != 1 {
			t.Errorf("key %s decoded as %q; encoding/json: %v", key, members[0].key, m)
		}
	}
}

// TestJSONStringValueDecodesLikeEncodingJSON checks the decoding of string
// values, escapes and all, against encoding/json.
func TestJSONStringValueDecodesLikeEncodingJSON(t *testing.T) {
	for _, lit := range []string{
		`""`, `"plain"`, `"a\"b\\c\/d"`, `"\b\f\n\r\t"`, `"\u0041\u00e9\u20AC"`,
		`"\ud83d\ude00!"`, `"日本\n語"`, `"\\u0041"`,
	} {
		if _, err := scanStrict([]byte(lit)); err != nil {
			t.Fatalf("scanStrict(%s): %v", lit, err)
		}
		got, err := jsonStringValue([]byte(lit))
		var want string
		if jerr := json.Unmarshal([]byte(lit), &want); err != nil || jerr != nil || got != want {
			t.Errorf("jsonStringValue(%s) = %q, %v; encoding/json: %q, %v", lit, got, err, want, jerr)
		}
	}
	for _, v := range []string{``, `"`, `1`, `null`, `"a`, `a"`} {
		if _, err := jsonStringValue([]byte(v)); err == nil {
			t.Errorf("jsonStringValue(%s) accepted a non-string", v)
		}
	}
}

// TestScanStrictEscapeErrors pins the error, and its offset, for each way
// a string can be wrong, as a value and as a key: the scanner's own, not
// described again here.
func TestScanStrictEscapeErrors(t *testing.T) {
	tests := []struct {
		in     string
		offset int // in the string value alone
		msg    string
	}{
		{`"\`, 1, "unexpected end of input"},
		{`"\x"`, 1, "invalid escape in a string"},
		{`"\u12""`, 1, `invalid \u escape in a string`},
		{`"\u12`, 1, "unexpected end of input"},
		{`"\u12g4"`, 1, `invalid \u escape in a string`},
		{`"\ud800"`, 1, "unpaired surrogate escape in a string"},
		{`"\ud800\n"`, 1, "unpaired surrogate escape in a string"},
		{`"\ud800\u0041"`, 1, "unpaired surrogate escape in a string"},
		{`"\ud800\ud800"`, 1, "unpaired surrogate escape in a string"},
		{`"\ud800\uzzzz"`, 1, "unpaired surrogate escape in a string"},
		{`"\udc00"`, 1, "unpaired surrogate escape in a string"},
		{"\"\xff\"", 1, "invalid UTF-8 in a string"},
		{"\"\xed\xa0\x80\"", 1, "invalid UTF-8 in a string"},
		{"\"a\x01\"", 2, "control character in a string"},
	}
	for _, tt := range tests {
		docs := []string{tt.in}
		if strings.HasSuffix(tt.in, `"`) {
			docs = append(docs, `{`+tt.in+`:1}`)
		}
		for i, doc := range docs {
			want := fmt.Sprintf("strictjson: %s at offset %d", tt.msg, tt.offset+i)
			_, err := scanStrict([]byte(doc))
			var se *strictjson.Error
			if !errors.As(err, &se) || err.Error() != want {
				t.Errorf("scanStrict(%q) = %v, want %s", doc, err, want)
			}
		}
	}
}

// The limits are those of the strict scanner's profiles, so that the
// constants documented here cannot drift from what is enforced.
func TestLimitsAreThoseOfTheScannerProfiles(t *testing.T) {
	if MaxCardSize != strictjson.AgentCard.MaxSize() || MaxBundleSize != strictjson.JOSE.MaxSize() ||
		maxDepth != strictjson.AgentCard.MaxDepth() || maxDepth != strictjson.JOSE.MaxDepth() {
		t.Fatalf("MaxCardSize %d, MaxBundleSize %d, maxDepth %d; profiles: %d, %d, %d, %d", MaxCardSize, MaxBundleSize, maxDepth,
			strictjson.AgentCard.MaxSize(), strictjson.JOSE.MaxSize(), strictjson.AgentCard.MaxDepth(), strictjson.JOSE.MaxDepth())
	}
}

// Case variants are refused under one folding rule everywhere, the one of
// jsonrpc: also the dotted and the dotless I match I.
func TestCaseVariantsIncludeTheDottedAndDotlessI(t *testing.T) {
	for _, doc := range []string{`{"id":1,"İd":2}`, `{"ID":1,"ıd":2}`, `{"x":{"kind":1,"\u212aind":2}}`} {
		if _, err := scanStrict([]byte(doc)); err == nil || !strings.Contains(err.Error(), "keys must differ in more than letter case") {
			t.Errorf("scanStrict(%s) = %v, want a case-variant key error", doc, err)
		}
	}
}
