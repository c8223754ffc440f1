package enforce

import (
	"encoding/json"
	"strconv"
	"testing"
)

func TestIDsEqualAsValuesAreOneKey(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{`0`, `-0`, true},
		{`1`, `1`, true},
		{`9007199254740993`, `9007199254740992`, true}, // one double
		{`"a"`, `"\u0061"`, true},
		{`1`, `"1"`, false},
		{`1`, `2`, false},
		{`-1`, `1`, false},
		{`""`, `0`, false},
		{`-00`, `0`, true},
		{`123456789012345`, `123456789012345`, true},
		{`1234567890123456`, `1234567890123457`, false}, // 16 digits, still exact
		{`-5`, `-5`, true},
		{`-`, `0`, false},
	} {
		if got := idKey(json.RawMessage(tc.a)) == idKey(json.RawMessage(tc.b)); got != tc.same {
			t.Errorf("idKey(%s) == idKey(%s): %v, want %v", tc.a, tc.b, got, tc.same)
		}
	}
}

// Two integer ids are one key exactly when they are one double.
func FuzzIDKeyComparesIntegersAsDoubles(f *testing.F) {
	f.Add(int64(0), int64(0), false)
	f.Add(int64(9007199254740993), int64(9007199254740992), false)
	f.Add(int64(-1), int64(1), true)
	f.Fuzz(func(t *testing.T, a, b int64, negZero bool) {
		ra, rb := strconv.FormatInt(a, 10), strconv.FormatInt(b, 10)
		if negZero && a == 0 {
			ra = "-0"
		}
		same := idKey(json.RawMessage(ra)) == idKey(json.RawMessage(rb))
		if want := float64(a) == float64(b); same != want {
			t.Fatalf("idKey(%s) == idKey(%s): %v, want %v", ra, rb, same, want)
		}
	})
}
