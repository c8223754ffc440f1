package jsonstr

import (
	"strings"
	"testing"
	"unicode/utf8"
)

var (
	ascii4KB = cut4KB("-rw-r--r--  1 dev  staff  1237 2024-03-01 10:00 src/pkg/handler.go ")
	// mixed4KB has a control, a quote or a non-ASCII rune every few bytes.
	mixed4KB = cut4KB("line\tone \"quoted\" é日本 \u2028 😀 C:\\path\n")
)

// cut4KB repeats s up to 4096 bytes, cut at a rune boundary.
func cut4KB(s string) string {
	s = strings.Repeat(s, 4096/len(s)+1)
	n := 4096
	for !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func BenchmarkAppend(b *testing.B) {
	for _, in := range []struct{ name, s string }{{"ASCII4KB", ascii4KB}, {"Mixed4KB", mixed4KB}, {"Short", "Tool not in allowed_tools list"}} {
		for _, e := range levels {
			b.Run(in.name+"/"+e.String(), func(b *testing.B) {
				dst := make([]byte, 0, 2*len(in.s)+2)
				b.SetBytes(int64(len(in.s)))
				for b.Loop() {
					dst = Append(dst[:0], in.s, e)
				}
			})
		}
		b.Run(in.name+"/bytes", func(b *testing.B) {
			src := []byte(in.s)
			dst := make([]byte, 0, 2*len(in.s)+2)
			b.SetBytes(int64(len(in.s)))
			for b.Loop() {
				dst = Append(dst[:0], src, EscapeMinimal)
			}
		})
	}
}

func BenchmarkAppendUnescaped(b *testing.B) {
	for _, in := range []struct{ name, s string }{{"ASCII4KB", ascii4KB}, {"Mixed4KB", mixed4KB}} {
		body := Append(nil, in.s, EscapeJS)
		body = body[1 : len(body)-1]
		b.Run(in.name, func(b *testing.B) {
			dst := make([]byte, 0, len(body))
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				dst = AppendUnescaped(dst[:0], body)
			}
		})
	}
}
