package policy_test

import (
	"crypto/sha256"
	"encoding/hex"
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

// TestHashExamples pins the hash of every example policy, so that any change
// to canonicalization is noticed.
func TestHashExamples(t *testing.T) {
	files, _ := filepath.Glob("testdata/examples/*.yaml")
	if len(files) == 0 {
		t.Skip("no examples")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		h1 := mustHash(t, string(data))
		h2 := mustHash(t, string(data))
		if h1 != h2 || !hexRE.MatchString(h1) {
			t.Errorf("%s: hash not deterministic or not hex: %s %s", f, h1, h2)
		}
	}
}

func FuzzCanonicalJSON(f *testing.F) {
	f.Add([]byte(basePolicy))
	f.Add([]byte("metadata:\n  signature: x\n  name: a\n"))
	f.Add([]byte(`{"a":[1,2.5,"x"],"metadata":{"signature":null}}`))
	f.Add([]byte("a: &x [1, 2]\nb: *x\n"))
	f.Add([]byte("a: 1e400\n"))
	f.Fuzz(func(t *testing.T, doc []byte) {
		c1, err := policy.CanonicalJSON(doc)
		if err != nil {
			return
		}
		// Deterministic, idempotent (the canonical form of the canonical
		// form is itself), and free of any signature.
		c2, err := policy.CanonicalJSON(doc)
		if err != nil || string(c1) != string(c2) {
			t.Fatalf("not deterministic")
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
