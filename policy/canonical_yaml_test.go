package policy

import (
	"bytes"
	"fmt"
	"testing"

	"sigs.k8s.io/yaml"
)

// FuzzYAMLToJSON checks the package's YAML conversion against the generic
// one it replaced (sigs.k8s.io/yaml, YAMLToJSONStrict): whatever yamlToJSON
// accepts, the generic conversion reads to the very same JSON bytes, so
// refusing colliding keys changed no valid policy's canonical form or hash.
// And the same bytes always give the same result.
func FuzzYAMLToJSON(f *testing.F) {
	for _, s := range []string{
		specDoc("mode: monitor\nallowed_tools: [read_file]"),
		benchPolicy,
		`{120,"0":Z,+0}7`,
		"a: {\"0\": x, +0: y}\n",
		"a: [\"null\", '~', \"\", null, ~, !!binary YQ==, 2001-01-01, 1_000, 0x1F, .5, -.inf]\n",
		"a: {\"null\": 1, \"~\": 2, !!str 3: 4}\n",
		"x: &x {a: 1}\ny:\n  <<: [*x, {b: 2}]\n  c: 3\n",
		"k: &k a\nm: {*k : 1}\n",
		"a: \"<&>\\u00e9\\ud800\"\n",
		"a: 12345678901234567890\nb: -9223372036854775809\nc: 1e400\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		js, err := yamlToJSON(data)
		js2, err2 := yamlToJSON(bytes.Clone(data))
		if !bytes.Equal(js, js2) || fmt.Sprint(err) != fmt.Sprint(err2) {
			t.Fatalf("not deterministic:\n\t%s %v\n\t%s %v", js, err, js2, err2)
		}
		if err != nil {
			if _, ok := err.(*LoadError); !ok {
				t.Fatalf("error %v is a %T, not a *LoadError", err, err)
			}
			return
		}
		want, gerr := yaml.YAMLToJSONStrict(data)
		if gerr != nil {
			t.Fatalf("accepted what the generic conversion refuses (%v):\n%s", gerr, js)
		}
		if !bytes.Equal(js, want) {
			t.Fatalf("differs from the generic conversion:\n got %s\nwant %s", js, want)
		}
	})
}
