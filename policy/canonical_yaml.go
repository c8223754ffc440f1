package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	yamlv2 "go.yaml.in/yaml/v2"
)

// yamlToJSON converts a policy document (YAML or JSON) to JSON. It is the
// package's only reading of YAML: Parse, CanonicalJSON (and with it Hash,
// Sign and VerifySignature) and the signature lookup all go through it, so
// that the policy that is validated, the policy that is enforced and the
// bytes that are hashed and signed are one and the same.
//
// Values are read exactly as yaml.v2 reads them into interface{} and the
// JSON is what sigs.k8s.io/yaml's YAMLToJSONStrict produces for them, so a
// valid policy converts to the same bytes as before this function existed.
// What that conversion silently accepted is refused here, each with a field
// path:
//
//   - two keys of one mapping that become the same JSON member name: "0",
//     +0, 0x0 and 00; 1, "1" and 1.0; true, yes, on and "true"; ~ and
//     "null"; a key brought in by a << merge and an explicit one; plain
//     duplicates. The generic conversion keeps one of them, and Go's map
//     order decides which, so the canonical form (and the policy hash and
//     signature over it) was not a function of the document;
//   - any key that is not a string (YAML 1.1 reads on: as true and 1: as an
//     integer; the conversion would stringify them);
//   - a second document, or content after the first one;
//   - non-finite numbers, nesting deeper than maxDepth, and alias expansion
//     beyond maxExpandedSize.
//
// Every check runs in an order fixed by the document (mapping keys sorted
// by their JSON name), so the same bytes always give the same output or the
// same error.
func yamlToJSON(data []byte) ([]byte, error) {
	dec := yamlv2.NewDecoder(bytes.NewReader(data))
	dec.SetStrict(true)
	var root yamlNode
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, docError("empty document")
		}
		return nil, docError("invalid YAML: " + trimYAMLError(err))
	}
	// Fail closed on a second document (or trailing content, which yaml.v2
	// reports when asked for the next one): a tool that reads only the first
	// document and a reviewer who reads the whole file must not see
	// different policies.
	var next yamlNode
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, docError("invalid YAML: " + trimYAMLError(err))
	default:
		return nil, docError("multiple YAML documents are not allowed")
	}
	switch root.kind {
	case yamlNull:
		return nil, docError("empty document")
	case yamlMapping:
	default:
		return nil, docError("document must be a mapping")
	}
	c := yamlConverter{budget: maxExpandedSize}
	v, err := c.convert(&root, "", 0)
	if err != nil {
		return nil, err
	}
	js, err := json.Marshal(v)
	if err != nil {
		return nil, docError("invalid document: " + err.Error())
	}
	return js, nil
}

type yamlKind uint8

const (
	yamlNull yamlKind = iota // the zero value: yaml.v2 does not call UnmarshalYAML for null nodes
	yamlScalar
	yamlSequence
	yamlMapping
)

// yamlNode is a YAML node as yaml.v2 decodes it, except that mappings keep
// every key with its spelling instead of collapsing them into a Go map keyed
// by the decoded value.
type yamlNode struct {
	kind    yamlKind
	scalar  any // yamlScalar: the value yaml.v2 decodes into interface{}
	items   []yamlNode
	entries map[yamlKey]yamlNode
}

// yamlKey is one mapping key. seq makes every key distinct, so that yaml.v2
// never merges two keys (or drops one as a duplicate) before the converter
// has seen both: duplicate and colliding keys are all reported by the
// converter, with a field path.
type yamlKey struct {
	typ  keyType
	text string // the scalar as written, without quotes or escapes (yaml.v2's node value)
	name string // the JSON member name the conversion gives it
	line int    // 1-based line of the key (of the anchored scalar for an alias), 0 if unknown
	seq  uint64
}

type keyType uint8

const (
	keyNull keyType = iota // the zero yamlKey: yaml.v2 does not call UnmarshalYAML for ~, null or an empty key
	keyString
	keyInt
	keyFloat
	keyBool
	keyOther
)

// jsonName is the JSON member name of k. A null key, which the generic
// conversion cannot convert at all, is named "null", as JavaScript names it.
func (k yamlKey) jsonName() string {
	if k.typ == keyNull {
		return "null"
	}
	return k.name
}

var yamlKeySeq atomic.Uint64

// GoString renders the key in yaml.v2's own errors ("key %#v already set in
// map"), which only a null key can still produce.
func (k yamlKey) GoString() string { return k.spelling() }

// spelling renders the key as written: strings quoted, other scalars as
// their plain text.
func (k yamlKey) spelling() string {
	switch k.typ {
	case keyString:
		return shortValue(k.text)
	case keyNull:
		if k.text == "" {
			return "~" // not known: yaml.v2 does not show ~, null or an empty key to UnmarshalYAML
		}
	}
	if len(k.text) > 80 {
		return k.text[:77] + "..."
	}
	return k.text
}

var lineRE = regexp.MustCompile(`^line (\d+): `)

func (k *yamlKey) UnmarshalYAML(unmarshal func(any) error) error {
	// Decoding into a string yields yaml.v2's node value: the key's text
	// as written (it fails only for a mapping or sequence).
	var text string
	if err := unmarshal(&text); err != nil {
		var te *yamlv2.TypeError
		if !errors.As(err, &te) {
			return err
		}
		line := ""
		if len(te.Errors) > 0 {
			if m := lineRE.FindStringSubmatch(te.Errors[0]); m != nil {
				line = "line " + m[1] + ": "
			}
		}
		return errors.New(line + "a mapping or a sequence cannot be a mapping key")
	}
	var v any
	if err := unmarshal(&v); err != nil {
		return err
	}
	// A scalar never decodes into struct{}; the type error names its line.
	var probe struct{}
	line := 0
	var te *yamlv2.TypeError
	if err := unmarshal(&probe); errors.As(err, &te) && len(te.Errors) > 0 {
		if m := lineRE.FindStringSubmatch(te.Errors[0]); m != nil {
			line, _ = strconv.Atoi(m[1])
		}
	}
	*k = yamlKey{text: text, line: line, seq: yamlKeySeq.Add(1)}
	switch v := v.(type) {
	case string:
		k.typ, k.name = keyString, v
	case int:
		k.typ, k.name = keyInt, strconv.Itoa(v)
	case int64:
		k.typ, k.name = keyInt, strconv.FormatInt(v, 10)
	case uint64:
		k.typ, k.name = keyInt, strconv.FormatUint(v, 10)
	case float64:
		// As sigs.k8s.io/yaml names a float key.
		k.typ, k.name = keyFloat, strconv.FormatFloat(v, 'g', -1, 32)
		switch k.name {
		case "+Inf":
			k.name = ".inf"
		case "-Inf":
			k.name = "-.inf"
		case "NaN":
			k.name = ".nan"
		}
	case bool:
		k.typ, k.name = keyBool, strconv.FormatBool(v)
	case nil: // Null, NULL
		k.typ = keyNull
	default:
		k.typ, k.name = keyOther, fmt.Sprint(v)
	}
	return nil
}

// UnmarshalText receives the quoted strings "null" and "~": yaml.v2 takes
// them for nulls and skips UnmarshalYAML, then finds they are strings.
func (k *yamlKey) UnmarshalText(text []byte) error {
	*k = yamlKey{typ: keyString, text: string(text), name: string(text), seq: yamlKeySeq.Add(1)}
	return nil
}

// yamlProbe accepts any node without decoding it: decoding a node into
// []yamlProbe succeeds exactly when the node is a sequence.
type yamlProbe struct{}

func (*yamlProbe) UnmarshalYAML(func(any) error) error { return nil }
func (*yamlProbe) UnmarshalText([]byte) error          { return nil }

// UnmarshalText receives the quoted strings "null" and "~" (see
// yamlKey.UnmarshalText).
func (n *yamlNode) UnmarshalText(text []byte) error {
	*n = yamlNode{kind: yamlScalar, scalar: string(text)}
	return nil
}

func (n *yamlNode) UnmarshalYAML(unmarshal func(any) error) error {
	var te *yamlv2.TypeError
	// Only a scalar decodes into a string, and cheaply fails otherwise.
	var text string
	switch err := unmarshal(&text); {
	case err == nil:
		var v any
		if err := unmarshal(&v); err != nil {
			return err
		}
		*n = yamlNode{kind: yamlScalar, scalar: v}
		return nil
	case !errors.As(err, &te):
		return err
	}
	var probe []yamlProbe
	switch err := unmarshal(&probe); {
	case err == nil:
		var items []yamlNode
		if err := unmarshal(&items); err != nil {
			return err
		}
		*n = yamlNode{kind: yamlSequence, items: items}
		return nil
	case !errors.As(err, &te):
		return err
	}
	var entries map[yamlKey]yamlNode
	if err := unmarshal(&entries); err != nil {
		return err
	}
	*n = yamlNode{kind: yamlMapping, entries: entries}
	return nil
}

type yamlConverter struct {
	budget int
}

func (c *yamlConverter) spend(n int) error {
	c.budget -= n
	if c.budget < 0 {
		return docError(fmt.Sprintf("document expands to more than %d bytes (YAML aliases?)", maxExpandedSize))
	}
	return nil
}

func fieldError(field, msg string) error {
	return &LoadError{Errors: []FieldError{{Field: field, Message: msg}}}
}

func (c *yamlConverter) convert(n *yamlNode, field string, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fieldError(field, fmt.Sprintf("nested deeper than %d levels", maxDepth))
	}
	if err := c.spend(8); err != nil {
		return nil, err
	}
	switch n.kind {
	case yamlScalar:
		switch v := n.scalar.(type) {
		case string:
			if err := c.spend(len(v)); err != nil {
				return nil, err
			}
		case float64:
			if math.IsInf(v, 0) || math.IsNaN(v) {
				return nil, fieldError(field, "non-finite number")
			}
		}
		return n.scalar, nil
	case yamlSequence:
		out := make([]any, len(n.items))
		for i := range n.items {
			v, err := c.convert(&n.items[i], indexField(field, i), depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	case yamlMapping:
		return c.mapping(n, field, depth)
	}
	return nil, nil
}

func (c *yamlConverter) mapping(n *yamlNode, field string, depth int) (any, error) {
	keys := make([]yamlKey, 0, len(n.entries))
	for k := range n.entries {
		keys = append(keys, k)
	}
	// Everything below runs in this order, which depends on the document
	// only: seq, which does not, is left out, and keys that differ only in
	// seq give the same message whichever comes first.
	slices.SortFunc(keys, func(a, b yamlKey) int {
		if c := strings.Compare(a.jsonName(), b.jsonName()); c != 0 {
			return c
		}
		if c := keyRank(a.typ) - keyRank(b.typ); c != 0 {
			return c
		}
		if a.line != b.line {
			return a.line - b.line
		}
		return strings.Compare(a.text, b.text)
	})
	for i := 0; i < len(keys); {
		j := i + 1
		for j < len(keys) && keys[j].jsonName() == keys[i].jsonName() {
			j++
		}
		if j-i > 1 {
			return nil, fieldError(field, collisionMessage(keys[i:j]))
		}
		i = j
	}
	for _, k := range keys {
		if k.typ != keyString {
			return nil, fieldError(field, nonStringKeyMessage(k))
		}
	}
	out := make(map[string]any, len(keys))
	for _, k := range keys {
		if err := c.spend(len(k.name)); err != nil {
			return nil, err
		}
		child := n.entries[k]
		v, err := c.convert(&child, joinField(field, k.name), depth+1)
		if err != nil {
			return nil, err
		}
		out[k.name] = v
	}
	return out, nil
}

// keyRank orders keys of one JSON name for messages: strings first.
func keyRank(t keyType) int {
	if t == keyString {
		return -1
	}
	return int(t)
}

// collisionMessage describes keys (two or more) that have the same JSON name.
func collisionMessage(keys []yamlKey) string {
	same := true
	for _, k := range keys[1:] {
		if k.typ != keys[0].typ || k.text != keys[0].text {
			same = false
		}
	}
	if same {
		var lines []string
		known := true
		for _, k := range keys {
			if l := strconv.Itoa(k.line); k.line > 0 && !slices.Contains(lines, l) {
				lines = append(lines, l)
			}
			known = known && k.line > 0
		}
		where := ""
		switch {
		case !known:
		case len(lines) == 1:
			where = " (line " + lines[0] + ")"
		default:
			where = " (lines " + joinAnd(lines) + ")"
		}
		return fmt.Sprintf("key %s appears more than once%s", keys[0].spelling(), where)
	}
	var spellings, numbers, booleans []string
	null := false
	for _, k := range keys {
		s := k.spelling()
		if k.line > 0 {
			s += " (line " + strconv.Itoa(k.line) + ")"
		}
		spellings = append(spellings, s)
		switch k.typ {
		case keyInt, keyFloat:
			numbers = append(numbers, k.spelling())
		case keyBool:
			booleans = append(booleans, k.spelling())
		case keyNull:
			null = true
		}
	}
	both := "both"
	if len(keys) > 2 {
		both = "all"
	}
	msg := fmt.Sprintf("keys %s %s become the JSON member %s", joinAnd(spellings), both, shortValue(keys[0].jsonName()))
	var reads []string
	if len(numbers) > 0 {
		reads = append(reads, "unquoted "+joinAnd(numbers)+" as "+plural(len(numbers), "a number", "numbers"))
	}
	if len(booleans) > 0 {
		reads = append(reads, "unquoted "+joinAnd(booleans)+" as "+plural(len(booleans), "a boolean", "booleans"))
	}
	if null {
		reads = append(reads, "~, null and an empty key as null")
	}
	if len(reads) > 0 {
		msg += " (YAML reads " + joinAnd(reads) + "; quote keys to keep them distinct)"
	}
	return msg
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func nonStringKeyMessage(k yamlKey) string {
	switch k.typ {
	case keyBool:
		// The conversion to JSON would turn `n:` into "false".
		return fmt.Sprintf("non-string key %s (YAML 1.1 reads y, n, yes, no, on and off as booleans; quote the key)", k.spelling())
	case keyNull:
		return fmt.Sprintf("non-string key %s (YAML reads ~, null and an empty key as null; quote the key)", k.spelling())
	}
	return fmt.Sprintf("non-string key %s (quote it)", k.spelling())
}

func joinAnd(s []string) string {
	if len(s) <= 1 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}
