package dlp

import (
	"strings"
	"testing"
)

// redactInPieces feeds text to RedactHead in pieces of at most chunk bytes,
// as a writer that holds back at most chunk bytes does, and redacts what is
// left at the end with RedactString.
func redactInPieces(s *Scanner, text string, chunk int) string {
	var out, buf []byte
	for len(text) > 0 {
		take := min(chunk-len(buf), len(text))
		buf, text = append(buf, text[:take]...), text[take:]
		if len(buf) >= chunk {
			head, n := s.RedactHead(Response, buf)
			out = append(out, head...)
			buf = append(buf[:0], buf[n:]...)
		}
	}
	rest, _ := s.RedactString(Response, string(buf))
	return string(out) + rest
}

func TestRedactHeadFindsASecretThatStraddlesTheCut(t *testing.T) {
	const chunk = 1024
	key := "AKIA" + "IOSFODNN7EXAMPLE"
	for _, tc := range []struct {
		name string
		s    *Scanner
	}{
		{"bounded patterns keep back their longest match", newScanner(t, nil, "AWS Key", `AKIA[0-9A-Z]{16}`)},
		{"unbounded patterns keep back MaxOverlap", newScanner(t, nil, "AWS Key", `AKIA[0-9A-Z]{16}`, "Token", `token=\S+`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Every position of the key around the first and the second cut.
			for _, at := range []int{chunk - 40, chunk - 20, chunk - 10, chunk - 1, chunk, 2*chunk - 700, 2 * chunk} {
				for _, total := range []int{3 * chunk, 40 * chunk} {
					text := strings.Repeat("x ", at/2) + strings.Repeat("y", at%2) + key + " " + strings.Repeat("z", total)
					got := redactInPieces(tc.s, text, chunk)
					want, _ := tc.s.RedactString(Response, text)
					if got != want || strings.Contains(got, key[4:]) {
						t.Fatalf("key at %d of %d: pieces differ from the whole text (%d vs %d bytes), key left: %v",
							at, len(text), len(got), len(want), strings.Contains(got, key[4:]))
					}
				}
			}
		})
	}
}

func TestRedactHeadKeepsBackNoMoreThanItNeeds(t *testing.T) {
	text := []byte(strings.Repeat("a", 4096))
	for _, tc := range []struct {
		name string
		s    *Scanner
		want int
	}{
		{"the longest bounded match", newScanner(t, nil, "A", `AKIA[0-9A-Z]{16}`, "B", `\d{3}-\d{2}-\d{4}`), 4096 - 20},
		{"MaxOverlap, but at most half, for an unbounded pattern", newScanner(t, nil, "T", `token=\S+`), 4096 / 2},
		{"nothing for a disabled scanner", &Scanner{}, 4096},
	} {
		t.Run(tc.name, func(t *testing.T) {
			head, n := tc.s.RedactHead(Response, text)
			if n != tc.want || string(head) != string(text[:n]) {
				t.Errorf("n = %d, want %d", n, tc.want)
			}
		})
	}
}

func TestRedactHeadMovesTheCutToTheEndOfACrossingMatch(t *testing.T) {
	s := newScanner(t, nil, "Token", `token=\S+`)
	// The match starts before the cut (half of the text) and ends after it.
	text := []byte(strings.Repeat("a ", 500) + "token=" + strings.Repeat("s", 100) + " " + strings.Repeat("b", 994))
	head, n := s.RedactHead(Response, text)
	if want := 1000 + len("token=") + 100; n != want || !strings.HasSuffix(string(head), " [REDACTED:Token]") {
		t.Errorf("n = %d, want %d; head ends %q", n, want, head[max(0, len(head)-20):])
	}
}
