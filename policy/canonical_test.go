package policy_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/agentid/agentid/policy"
)

const basePolicy = `apiVersion: aip.io/v1alpha2
kind: AgentPolicy
metadata:
  name: secure-agent
  version: "1.0.0"
spec:
  mode: enforce
  allowed_tools:
    - read_file
    - list_directory
  tool_rules:
    - tool: write_file
      action: ask
      rate_limit: 5/minute
  identity:
    enabled: true
    token_ttl: 10m
    audience: https://api.company.com
`

func mustHash(t *testing.T, doc string) string {
	t.Helper()
	h, err := policy.HashCanonical([]byte(doc))
	if err != nil {
		t.Fatalf("HashCanonical: %v\n%s", err, doc)
	}
	return h
}

var hexRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

func TestHashIsSHA256OfJCS(t *testing.T) {
	c, err := policy.CanonicalJSON([]byte(basePolicy))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"apiVersion":"aip.io/v1alpha2","kind":"AgentPolicy","metadata":{"name":"secure-agent","version":"1.0.0"},"spec":{"allowed_tools":["read_file","list_directory"],"identity":{"audience":"https://api.company.com","enabled":true,"token_ttl":"10m"},"mode":"enforce","tool_rules":[{"action":"ask","rate_limit":"5/minute","tool":"write_file"}]}}`
	if string(c) != want {
		t.Fatalf("canonical form\n got %s\nwant %s", c, want)
	}
	sum := sha256.Sum256(c)
	h := mustHash(t, basePolicy)
	if h != hex.EncodeToString(sum[:]) || !hexRE.MatchString(h) {
		t.Fatalf("hash %q is not the lowercase hex SHA-256 of the canonical form", h)
	}
	p, _, err := policy.Parse([]byte(basePolicy))
	if err != nil {
		t.Fatal(err)
	}
	if ph, err := p.Hash(); err != nil || ph != h {
		t.Fatalf("Policy.Hash = %q, %v; want %q", ph, err, h)
	}
}

func TestHashIgnoresPresentation(t *testing.T) {
	base := mustHash(t, basePolicy)
	same := map[string]string{
		"comments": "# leading comment\n" + strings.Replace(basePolicy, "mode: enforce", "mode: enforce   # trailing", 1),
		"key order": `kind: AgentPolicy
apiVersion: aip.io/v1alpha2
spec:
  identity:
    audience: https://api.company.com
    token_ttl: 10m
    enabled: true
  tool_rules:
    - rate_limit: 5/minute
      action: ask
      tool: write_file
  allowed_tools: [read_file, list_directory]
  mode: "enforce"
metadata:
  version: '1.0.0'
  name: secure-agent
`,
		"indentation and blank lines": strings.ReplaceAll(strings.ReplaceAll(basePolicy, "\n  ", "\n    "), "spec:\n", "\nspec:\n\n"),
		"CRLF":                        strings.ReplaceAll(basePolicy, "\n", "\r\n"),
		"signature":                   strings.Replace(basePolicy, "  name: secure-agent\n", "  name: secure-agent\n  signature: \"ed25519:AAAA\"\n", 1),
		"JSON document":               `{"apiVersion":"aip.io/v1alpha2","kind":"AgentPolicy","metadata":{"name":"secure-agent","version":"1.0.0"},"spec":{"mode":"enforce","allowed_tools":["read_file","list_directory"],"tool_rules":[{"tool":"write_file","action":"ask","rate_limit":"5/minute"}],"identity":{"enabled":true,"token_ttl":"10m","audience":"https://api.company.com"}}}`,
		"anchors":                     strings.Replace(strings.Replace(basePolicy, "    - read_file\n", "    - &rf read_file\n", 1), "    enabled: true\n", "    enabled: true\n", 1),
	}
	for name, doc := range same {
		if h := mustHash(t, doc); h != base {
			t.Errorf("%s changed the hash", name)
		}
	}
}

func TestHashChangesWithSemantics(t *testing.T) {
	base := mustHash(t, basePolicy)
	changes := map[string][2]string{
		"name":              {"name: secure-agent", "name: secure-agent2"},
		"list order":        {"    - read_file\n    - list_directory\n", "    - list_directory\n    - read_file\n"},
		"add tool":          {"    - list_directory\n", "    - list_directory\n    - tool_b\n"},
		"mode":              {"mode: enforce", "mode: monitor"},
		"bool":              {"enabled: true", "enabled: false"},
		"duration":          {"token_ttl: 10m", "token_ttl: 600s"},
		"string vs number":  {`version: "1.0.0"`, `version: "1.0.1"`},
		"explicit default":  {"  mode: enforce\n", "  mode: enforce\n  strict_args_default: false\n"},
		"audience":          {"https://api.company.com", "https://api.company.com/"},
		"case":              {"read_file", "Read_file"},
		"metadata.owner":    {"  version: \"1.0.0\"\n", "  version: \"1.0.0\"\n  owner: a@b.c\n"},
		"unicode":           {"list_directory", "list_directorу"}, // Cyrillic у
		"rate limit":        {"5/minute", "6/minute"},
		"signature in spec": {"  mode: enforce\n", "  mode: enforce\n  x_signature: a\n"},
	}
	for name, c := range changes {
		doc := strings.Replace(basePolicy, c[0], c[1], 1)
		if doc == basePolicy {
			t.Fatalf("%s: replacement did not apply", name)
		}
		if h, err := policy.HashCanonical([]byte(doc)); err == nil && h == base {
			t.Errorf("%s did not change the hash", name)
		}
	}
}

func TestCanonicalJSONRejects(t *testing.T) {
	for name, doc := range map[string]string{
		"duplicate key": "a: 1\na: 2\n",
		"not a mapping": "- a\n- b\n",
		"invalid yaml":  "a: [\n",
		"scalar":        "hello\n",
		// These two used to hash the first document only.
		"second document":                "a: 1\n---\nb: 2\n",
		"content after a flow mapping":   "{a: 1}\nb: 2\n",
		"non-string key":                 "a: {1: x}\n",
		"keys colliding as JSON members": `{120,"0":Z,+0}`,
	} {
		if _, err := policy.CanonicalJSON([]byte(doc)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestCanonicalNumbersAndEscapes(t *testing.T) {
	c, err := policy.CanonicalJSON([]byte("a: 1.0\nb: 1e3\nc: \"<&>\\u00e9\"\nd: 2026-01-24\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"a":1,"b":1000,"c":"<&>é","d":"2026-01-24"}`
	if string(c) != want {
		t.Fatalf("got %s, want %s", c, want)
	}
}

// collidingDocs are documents with two keys that become one JSON member
// name, and the error every path that reads a policy must give for them.
var collidingDocs = []struct{ name, doc, err string }{
	{"the fuzz finding {120,\"0\":Z,+0}7", "{120,\"0\":Z,+0}7", "invalid YAML: did not find expected <document start>"},
	{"the fuzz finding without its trailing 7", `{120,"0":Z,+0}`, `keys "0" (line 1) and +0 (line 1) both become the JSON member "0"`},
	{"a quoted and an unquoted key in metadata", strings.Replace(basePolicy, "  version: \"1.0.0\"\n", "  version: \"1.0.0\"\n  \"1\": a\n  1.0: b\n", 1),
		`metadata: keys "1" (line 6) and 1.0 (line 7) both become the JSON member "1"`},
	{"a boolean key and its string", strings.Replace(basePolicy, "    enabled: true\n", "    enabled: true\n    on: x\n    \"true\": y\n", 1),
		`spec.identity: keys "true" (line 18) and on (line 17) both become the JSON member "true"`},
	{"a merged key and an explicit one", basePolicy + "w: &x {mode: monitor}\nz:\n  <<: *x\n  mode: enforce\n",
		`z: key "mode" appears more than once (lines 19 and 22)`},
}

// TestEveryPathRefusesCollidingKeys: the canonical form, the hash, signing,
// verification and loading all refuse a document whose keys collide as
// JSON member names, with the same message; none of them picks a winner.
func TestEveryPathRefusesCollidingKeys(t *testing.T) {
	pub, priv := newEd25519(t)
	for _, tt := range collidingDocs {
		t.Run(tt.name, func(t *testing.T) {
			doc := []byte(tt.doc)
			check := func(path string, err error) {
				t.Helper()
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("%s: got %v, want an error containing %q", path, err, tt.err)
				}
			}
			_, err := policy.CanonicalJSON(doc)
			check("CanonicalJSON", err)
			_, err = policy.HashCanonical(doc)
			check("HashCanonical", err)
			_, err = policy.Sign(doc, priv)
			check("Sign", err)
			check("VerifyRaw", policy.VerifyRaw(doc, "ed25519:"+strings.Repeat("A", 86)+"==", pub))
			_, _, err = policy.Parse(doc)
			check("Parse", err)
			p := &policy.Policy{Raw: doc}
			_, err = p.Hash()
			check("Policy.Hash", err)
		})
	}
}

// TestCanonicalFormIsAPureFunctionOfTheBytes: the same bytes give the same
// canonical form, or the same error, in every run (the fuzz finding gave
// one of two canonical forms, depending on Go's map order).
func TestCanonicalFormIsAPureFunctionOfTheBytes(t *testing.T) {
	docs := []string{basePolicy, "{120,\"0\":Z,+0}7", `{120,"0":Z,+0}`, "a: {\"0\": x, 0x0: y}\n", "a: {b: 1, c: [1, 2, {d: e}], f: {g: h}}\n"}
	for _, tt := range collidingDocs {
		docs = append(docs, tt.doc)
	}
	for _, doc := range docs {
		c0, err0 := policy.CanonicalJSON([]byte(doc))
		for range 100 {
			c, err := policy.CanonicalJSON([]byte(strings.Clone(doc)))
			if string(c) != string(c0) || fmt.Sprint(err) != fmt.Sprint(err0) {
				t.Fatalf("%q: canonical form not deterministic:\n\t%s %v\n\t%s %v", doc, c0, err0, c, err)
			}
		}
	}
}

// exampleHashes are the policy hashes of every example policy shipped with
// agentid. They were cross-checked against an independent implementation
// (PyYAML with timestamps kept as strings, and a hand-written RFC 8785
// serializer). A change here is a change of every signature and token
// policy_hash over that policy: it needs a reason, not just a new value.
var exampleHashes = map[string]string{
	"testdata/examples/agent-monitor.yaml":       "a0837c187bbb368fc849d1b75685291d0ca2a43fcd3dd6c316a001242da60b5a",
	"testdata/examples/agent.yaml":               "c99283a804bb40c4bdd4bea90f04bd14d3d3fd63e7c748d8aaab993230b414f0",
	"testdata/examples/docker-wrapper.yaml":      "7bd1bc021af756db8c8542318380d829e5df146d6c26e4d01f8c6e65eb9b4ec5",
	"testdata/examples/gemini-jack-defense.yaml": "6d3c0f615822692f7e25fdecc26d65f4a8f90e14cb0e625679caa2c2fd8190d1",
	"testdata/examples/gpu-policy.yaml":          "c13f26d5197288dda5fc812b9e2607dbbbfecce7a890e57b9f659585d7fe6eeb",
	"testdata/examples/identity-server.yaml":     "2d8939df980215b877ac35482efcbf9cd9f6ce1efb69df29f5365e5c2d5bfd0a",
	"testdata/examples/monitor-mode.yaml":        "f32416f3268dd72d18061af1d4a1626ae0c31b9dc7b7602080b649eb7cbf9d3b",
	"testdata/examples/read-only.yaml":           "b18cdc9bfbe87bb58e099cfdba998b7acf926bd041881943e5cfb5d0b17d1ed8",
	// The policy `agentid demo` runs.
	"../demo/policy.yaml": "c862cdea27bfa393942b4967a8ab15e9506ae43f18aa1f33ccefed9d96a458da",
	// The minimal policy in the README ("A minimal policy:").
	"../README.md": "daba3595046c9c04dfeb767213ae211b7b031868690d75066e05026f912d201f",
}

// TestHashExamples pins the exact hash of every example policy, so that
// any change to canonicalization (or to an example) is noticed. Every file
// in testdata/examples must be pinned.
func TestHashExamples(t *testing.T) {
	files, err := filepath.Glob("testdata/examples/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example policies found (%v)", err)
	}
	for _, f := range files {
		if _, ok := exampleHashes[f]; !ok {
			t.Errorf("%s has no pinned hash: add it to exampleHashes", f)
		}
	}
	for f, want := range exampleHashes {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if filepath.Base(f) == "README.md" {
			data = readmePolicy(t, data)
		}
		if got := mustHash(t, string(data)); got != want {
			t.Errorf("%s: policy hash %s, pinned %s", f, got, want)
		}
	}
}

// readmePolicy returns the YAML block after "A minimal policy:".
func readmePolicy(t *testing.T, readme []byte) []byte {
	t.Helper()
	_, rest, ok := strings.Cut(string(readme), "A minimal policy:\n\n```yaml\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("README.md: no ```yaml block after \"A minimal policy:\"")
	}
	return []byte(block)
}

// FuzzCanonicalJSON checks that the canonical form is a pure function of
// the bytes: repeated and fresh runs give byte-identical output or the same
// error, Parse agrees with it (same verdict every run, and the hash of an
// accepted policy is the SHA-256 of this output), and the canonical form is
// idempotent.
func FuzzCanonicalJSON(f *testing.F) {
	f.Add([]byte(basePolicy))
	f.Add([]byte("metadata:\n  signature: x\n  name: a\n"))
	f.Add([]byte(`{"a":[1,2.5,"x"],"metadata":{"signature":null}}`))
	f.Add([]byte("a: &x [1, 2]\nb: *x\n"))
	f.Add([]byte("a: 1e400\n"))
	f.Add([]byte("a: {\"0\": x, 0x0: y, 00: z}\n"))
	f.Add([]byte("a: {yes: 1, on: 2, \"true\": 3, ~: 4, \"null\": 5}\n"))
	f.Add([]byte("x: &x {a: 1}\ny:\n  <<: *x\n  a: 2\n"))
	f.Add([]byte("k: &k a\nm: {*k : 1, a: 2}\n"))
	for _, tt := range collidingDocs {
		f.Add([]byte(tt.doc))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		c1, err1 := policy.CanonicalJSON(doc)
		for range 4 {
			c, err := policy.CanonicalJSON(bytes.Clone(doc))
			if !bytes.Equal(c, c1) || fmt.Sprint(err) != fmt.Sprint(err1) {
				t.Fatalf("canonical form not deterministic:\n\t%s %v\n\t%s %v", c1, err1, c, err)
			}
		}
		p1, w1, perr1 := policy.Parse(doc)
		for range 2 {
			_, w, perr := policy.Parse(bytes.Clone(doc))
			if fmt.Sprint(perr) != fmt.Sprint(perr1) || fmt.Sprint(w) != fmt.Sprint(w1) {
				t.Fatalf("Parse not deterministic:\n\t%v %v\n\t%v %v", perr1, w1, perr, w)
			}
		}
		if perr1 == nil {
			if err1 != nil {
				t.Fatalf("Parse accepted a document without a canonical form: %v", err1)
			}
			sum := sha256.Sum256(c1)
			if h, err := p1.Hash(); err != nil || h != hex.EncodeToString(sum[:]) {
				t.Fatalf("Policy.Hash = %q, %v; want the SHA-256 of the canonical form", h, err)
			}
		}
		if err1 != nil {
			return
		}
		c3, err := policy.CanonicalJSON(c1)
		if err != nil {
			t.Fatalf("canonical form does not re-parse: %v\n%s", err, c1)
		}
		if string(c3) != string(c1) {
			t.Fatalf("not idempotent:\n%s\n%s", c1, c3)
		}
	})
}
