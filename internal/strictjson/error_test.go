package strictjson

import (
	"errors"
	"strings"
	"testing"
)

// Each code has one text, which says what the profile's rule was where
// that matters, and every message ends with the offset: the packages that
// read JSON wrap these errors instead of describing them again.
func TestErrorMessagesSayWhatIsWrongAndWhere(t *testing.T) {
	tests := []struct {
		name string
		p    Profile
		in   string
		want string
	}{
		{"a value is due", MCP, `{"a":}`, "expected a value at offset 5"},
		{"a key is due", MCP, `{1:2}`, "expected a string key at offset 1"},
		{"a colon is due", MCP, `{"a" 1}`, "expected ':' after an object key at offset 5"},
		{"a comma or brace is due in an object", MCP, `{"a":1 "b":2}`, "expected ',' or '}' at offset 7"},
		{"a comma or bracket is due in an array", MCP, `[1 2]`, "expected ',' or ']' at offset 3"},
		{"the input ends early", MCP, `{"a":[1,`, "unexpected end of input at offset 8"},
		{"the input ends in an escape", MCP, `"\`, "unexpected end of input at offset 1"},
		{"the input ends in a string", MCP, `"abc`, "unterminated string at offset 4"},
		{"trailing data", MCP, `1 2`, "data after the top-level value at offset 2"},
		{"a bad literal", MCP, `tru`, "invalid literal at offset 0"},
		{"a leading zero", MCP, `01`, "data after the top-level value at offset 1"},
		{"a number without digits", MCP, `-x`, "invalid number at offset 1"},
		{"a control character", MCP, "\"a\x01\"", "control character in a string at offset 2"},
		{"invalid UTF-8", MCP, "\"\xff\"", "invalid UTF-8 in a string at offset 1"},
		{"a bad escape", MCP, `"\x"`, "invalid escape in a string at offset 1"},
		{"a bad unicode escape", MCP, `"\u12g4"`, `invalid \u escape in a string at offset 1`},
		{"a lone surrogate", MCP, `"\ud800"`, "unpaired surrogate escape in a string at offset 1"},
		{"a case variant, where keys fold", MCP, `{"a":1,"A":2}`, "duplicate key (keys must differ in more than letter case) at offset 7"},
		{"a duplicate, where keys do not fold", Canonical, `{"a":1,"a":2}`, "duplicate key at offset 7"},
		{"too deep, with the profile's limit", AgentCard, strings.Repeat("[", 65) + strings.Repeat("]", 65), "nesting deeper than 64 levels at offset 64"},
		{"an integer beyond I-JSON's range", JOSE, `[9007199254740993]`, "integer beyond 2^53 in magnitude at offset 1"},
		{"a number beyond a double's range", JOSE, `[1e400]`, "number beyond the range of a double at offset 1"},
		{"a number beyond a double's range, canonical", Canonical, `[1e400]`, "number beyond the range of a double at offset 1"},
		{"an integer beyond a double's range, canonical", Canonical, `[1` + strings.Repeat("0", 400) + `]`, "number beyond the range of a double at offset 1"},
		{"too large", AgentCard, `"` + strings.Repeat("a", 1<<20) + `"`, "document larger than 1048576 bytes at offset 1048576"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e *Error
			if err := Validate(tt.p, []byte(tt.in)); !errors.As(err, &e) {
				t.Fatalf("Validate = %v, want an *Error", err)
			}
			if got := e.Message(); got != tt.want {
				t.Errorf("Message() = %q, want %q", got, tt.want)
			}
			if got := e.Error(); got != "strictjson: "+tt.want {
				t.Errorf("Error() = %q, want the prefix and the message", got)
			}
		})
	}
}

func TestEveryCodeHasItsText(t *testing.T) {
	for c := ErrExpectedValue; c <= ErrLoneSurrogate; c++ {
		if strings.HasPrefix(c.String(), "Code(") {
			t.Errorf("code %d has no text", c)
		}
	}
	for c := ErrDuplicateKey; c <= ErrTooLarge; c++ {
		if strings.HasPrefix(c.String(), "Code(") {
			t.Errorf("code %d has no text", c)
		}
	}
	if got := Code(200).String(); got != "Code(200)" {
		t.Errorf("unknown code: %q", got)
	}
}
