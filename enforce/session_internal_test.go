package enforce

import (
	"encoding/json"
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
	} {
		if got := idKey(json.RawMessage(tc.a)) == idKey(json.RawMessage(tc.b)); got != tc.same {
			t.Errorf("idKey(%s) == idKey(%s): %v, want %v", tc.a, tc.b, got, tc.same)
		}
	}
}
