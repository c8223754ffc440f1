package jsonrpc

import (
	"strings"
	"testing"
)

func TestIDFromHeadFindsTheIDBeforeTheCut(t *testing.T) {
	long := strings.Repeat("x", 100)
	for _, tc := range []struct {
		name, head, id string
	}{
		{"an integer id before a cut params", `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"a":"` + long, "5"},
		{"a string id", `{"id":"abc","result":{"content":"` + long, `"abc"`},
		{"an escaped member name", `{"\u0069d":7,"result":"` + long, "7"},
		{"an id after a complete member", `{"jsonrpc":"2.0","result":{"x":[1,2]},"id":-3,"more":"` + long, "-3"},
		{"no id before the cut", `{"jsonrpc":"2.0","params":{"id":3,"a":"` + long, ""},
		{"a null id", `{"id":null,"result":"` + long, ""},
		{"a fractional id", `{"id":1.5,"result":"` + long, ""},
		{"not an object", `[{"id":1}`, ""},
		{"not JSON", `id:1`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, ok := IDFromHead([]byte(tc.head))
			if ok != (tc.id != "") || string(id) != tc.id {
				t.Fatalf("IDFromHead = %s, %v; want %q", id, ok, tc.id)
			}
		})
	}
}

func TestReaderKeepsTheHeadOfALineTooLong(t *testing.T) {
	line := `{"jsonrpc":"2.0","id":9,"result":"` + strings.Repeat("y", 200) + `"}`
	r := newReaderSize(strings.NewReader(line+"\n"+`{"jsonrpc":"2.0","id":10,"result":1}`+"\n"), 64, 16)
	if _, err := r.ReadLine(); err != ErrLineTooLong {
		t.Fatalf("err %v, want ErrLineTooLong", err)
	}
	if id, ok := IDFromHead(r.Head()); !ok || string(id) != "9" {
		t.Fatalf("head %q gives id %s, %v", r.Head(), id, ok)
	}
	if got, err := r.ReadLine(); err != nil || !strings.Contains(string(got), `"id":10`) {
		t.Fatalf("next line %q, %v", got, err)
	}
}
