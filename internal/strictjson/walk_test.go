package strictjson

import (
	"strings"
	"testing"
)

func TestNextMemberReadsWhatMemberReads(t *testing.T) {
	for _, doc := range []string{
		`{}`, ` { } `, `{"a":1}`,
		`{ "a" : [1, {"x":"}"}] , "b\"}" :"s\"}\\", "c":null,"d":-1.5e3,"e":{"f":[[]]},"g":true }`,
		`{"\u0061":"\ud83d\ude00","k":"` + strings.Repeat(`x\"`, 40) + `"}`,
		"{\"a\":\n\t[ \"\\\\\" ,\n 2 ]\r\n}",
	} {
		s := NewScanner(MCP, []byte(doc))
		if _, err := s.Next(); err != nil {
			t.Fatalf("test bug: %q: %v", doc, err)
		}
		data := []byte(doc)
		i := strings.IndexByte(doc, '{') + 1
		for n := 0; ; n++ {
			wk, wv, ok, err := s.Member()
			if err != nil {
				t.Fatalf("test bug: %q: %v", doc, err)
			}
			key, val, next, got := NextMember(data, i)
			if got != ok {
				t.Fatalf("%q: member %d: NextMember ok=%v, Member ok=%v", doc, n, got, ok)
			}
			if !ok {
				break
			}
			if string(key) != doc[wk.Start:wk.End] || string(val) != doc[wv.Start:wv.End] {
				t.Fatalf("%q: member %d: NextMember %s:%s, Member %s:%s", doc, n, key, val, doc[wk.Start:wk.End], doc[wv.Start:wv.End])
			}
			i = next
		}
		if err := s.Finish(); err != nil {
			t.Fatalf("test bug: %q: %v", doc, err)
		}
		s.Release()
	}
}

func TestNextMemberDoesNotPanicOnInputThatIsNotValid(t *testing.T) {
	doc := `{"a":[1,{"b":"c\"d"}],"e":"f\\","g":{` // cut anywhere
	for cut := range len(doc) + 1 {
		for start := range cut + 1 {
			data := []byte(doc[:cut])
			for i, n := start, 0; n < 100; n++ {
				_, _, next, ok := NextMember(data, i)
				if !ok || next <= i {
					break
				}
				i = next
			}
		}
	}
}
