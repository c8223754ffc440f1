package gateway

import (
	"strings"
	"testing"
)

// The head of a body over the limit is at most what was read, whatever
// the limit (it was cut at 4 KB, past the end of a shorter body).
func TestReadBodyKeepsTheHeadOfAnOversizedBody(t *testing.T) {
	for _, max := range []int{10, headSize, 3 * headSize} {
		body := strings.Repeat("x", max+1)
		b, over, err := readBody(strings.NewReader(body), max)
		if err != nil || !over || len(b) != min(headSize, max+1) {
			t.Fatalf("max %d: %d bytes, over %v, %v", max, len(b), over, err)
		}
	}
}
