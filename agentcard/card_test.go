package agentcard

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/agentid/agentid/internal/testenv"
	"github.com/gowebpki/jcs"
)

func TestParseCardRejects(t *testing.T) {
	deep := strings.Repeat(`{"a":`, maxDepth+1) + "1" + strings.Repeat("}", maxDepth+1)
	for _, tc := range []struct {
		name string
		card string
	}{
		{"duplicate keys", `{"name":"a","name":"b"}`},
		{"duplicate keys in a nested object", `{"skills":[{"id":"x","id":"y"}]}`},
		{"duplicate keys spelled with escapes", `{"name":"a","n\u0061me":"b"}`},
		{"case-variant keys (Go's encoding/json folds case)", `{"name":"a","Name":"b"}`},
		{"case-variant keys via the Kelvin sign", "{\"k\":1,\"\u212a\":2}"},
		{"duplicate keys among many (map path)", `{"a0":0,"a1":1,"a2":2,"a3":3,"a4":4,"a5":5,"a6":6,"a7":7,"a8":8,"a9":9,"b0":0,"b1":1,"b2":2,"b3":3,"b4":4,"b5":5,"b6":6,"B0":7}`},
		{"not an object", `["name"]`},
		{"a string", `"card"`},
		{"trailing data", `{"name":"a"} {}`},
		{"trailing comma", `{"name":"a",}`},
		{"single quotes", `{'name':'a'}`},
		{"comment", `{"name":"a"/* x */}`},
		{"NaN", `{"n":NaN}`},
		{"leading zero", `{"n":01}`},
		{"integer beyond 2^53", `{"n":9007199254740993}`},
		{"negative integer beyond 2^53", `{"n":-9007199254740993}`},
		{"number beyond the double range", `{"n":1e400}`},
		{"unpaired high surrogate", `{"n":"\ud800"}`},
		{"unpaired low surrogate", `{"n":"\udc00x"}`},
		{"high surrogate followed by a non-surrogate", `{"n":"\ud800\u0041"}`},
		{"invalid UTF-8", "{\"n\":\"\xff\"}"},
		{"raw control character in a string", "{\"n\":\"a\tb\"}"},
		{"byte order mark", "\ufeff{\"n\":1}"},
		{"nesting deeper than the cap", deep},
		{"empty input", ``},
		{"signatures not an array", `{"signatures":"x"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseCard([]byte(tc.card)); err == nil {
				t.Fatal("accepted")
			} else if !strings.HasPrefix(err.Error(), "agentcard: ") {
				t.Fatalf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestParseCardAccepts(t *testing.T) {
	for _, tc := range []string{
		`{}`,
		` {"n": 9007199254740992, "m": -9007199254740992} `,
		`{"n":1.5e300,"s":"\ud83d\ude02 \u00e9 é","e":"","a":[],"o":{}}`,
		"{\"ключ\":\"значение\",\"KEY2\":1}",
	} {
		if _, err := ParseCard([]byte(tc)); err != nil {
			t.Errorf("%s: %v", tc, err)
		}
	}
}

func TestParseCardEnforcesSizeCap(t *testing.T) {
	big := []byte(`{"x":"` + strings.Repeat("a", MaxCardSize) + `"}`)
	if _, err := ParseCard(big); err == nil {
		t.Fatal("card over MaxCardSize accepted")
	}
}

func TestPayloadIsRFC8785OfTheCardWithoutSignatures(t *testing.T) {
	card := []byte(`{
	  "signatures": [{"protected": "x", "signature": "y"}],
	  "name": "A & B <agent>",
	  "description": "",
	  "skills": [],
	  "capabilities": {"streaming": false, "n": 0},
	  "€": "euro", "\r": "cr", "a": 1.0, "b": 1e21, "c": 0.000001, "d": 1e-7,
	  "ünïcødé": "ï\u2028"
	}`)
	c, err := ParseCard(card)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Payload()
	if err != nil {
		t.Fatal(err)
	}
	// RFC 8785: keys sorted by UTF-16 code units ("\r" < "a" < … < "ü" < "€"),
	// no HTML escaping, U+2028 written raw, ECMAScript numbers, empty
	// values kept (A2A v1.0 keeps required empties; Kagenti dropped them).
	want := "{\"\\r\":\"cr\",\"a\":1,\"b\":1e+21,\"c\":0.000001,\"capabilities\":{\"n\":0,\"streaming\":false}," +
		"\"d\":1e-7,\"description\":\"\",\"name\":\"A & B <agent>\",\"skills\":[],\"ünïcødé\":\"ï\u2028\",\"€\":\"euro\"}"
	if string(got) != want {
		t.Fatalf("payload\n got %s\nwant %s", got, want)
	}
}

func TestCanonicalBytesEqualTheRFC8785TestVectors(t *testing.T) {
	for _, v := range testenv.RFC8785Vectors(t) {
		name, input, want := v.Name, v.Input, v.Want
		t.Run(name, func(t *testing.T) {
			trimmed := bytes.TrimSpace(input)
			if trimmed[0] != '{' {
				// Not a card: only the canonicalizer applies.
				got, err := jcs.Transform(input)
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("got %q (%v), want %q", got, err, want)
				}
				return
			}
			c, err := ParseCard(input)
			if name == "structures.json" {
				// This vector has keys "f"/"F" and "e"/"E" in one object:
				// canonical JSON, but a card no Go consumer reads the way
				// JavaScript does, so the card policy refuses it.
				if err == nil {
					t.Fatal("case-variant keys accepted in a card")
				}
				got, err := jcs.Transform(input)
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("got %q (%v), want %q", got, err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.Payload()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("payload\n got %q\nwant %q", got, want)
			}
		})
	}
}

func TestSignKeepsEveryFieldAndAppendsSignatures(t *testing.T) {
	f := newFixture(t)
	once := f.sign(t, baseCard)
	twice := f.sign(t, once)
	var m map[string]json.RawMessage
	if err := json.Unmarshal(twice, &m); err != nil {
		t.Fatal(err)
	}
	var sigs []json.RawMessage
	if err := json.Unmarshal(m["signatures"], &sigs); err != nil || len(sigs) != 2 {
		t.Fatalf("want 2 signatures, got %d (%v)", len(sigs), err)
	}
	// Unknown fields and exact number literals survive signing.
	for _, want := range []string{`"x-vendor"`, `4.50`, `1e21`, `"protocolVersion"`, `"description": ""`, `"defaultOutputModes": []`} {
		if !bytes.Contains(twice, []byte(want)) {
			t.Errorf("signed card lost %s", want)
		}
	}
	res, err := f.verifier(t).Verify(twice)
	if err != nil || !res.Signatures[0].Verified || !res.Signatures[1].Verified {
		t.Fatalf("both signatures must verify: %v %+v", err, res)
	}
}
