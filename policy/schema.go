package policy

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// The upstream v1alpha2 schema rejects spec-valid policies (it lacks
// schema_hash, the v1alpha2 DLP fields, most identity and server fields, and
// its duration pattern refuses "1h30m" and "7d"), so we ship a corrected one.
// It is the first gate: with additionalProperties:false on every object it
// rejects unknown keys and case variants such as Allowed_Tools, which
// encoding/json would otherwise match case-insensitively.
//
//go:embed schema/agent-policy-v1alpha2.schema.json
var schemaJSON []byte

const schemaURL = "https://github.com/agentid/agentid/policy/schema/agent-policy-v1alpha2.schema.json"

var compiledSchema = sync.OnceValues(func() (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemaJSON))
	if err != nil {
		return nil, fmt.Errorf("policy: embedded schema: %w", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(schemaURL, doc); err != nil {
		return nil, fmt.Errorf("policy: embedded schema: %w", err)
	}
	s, err := c.Compile(schemaURL)
	if err != nil {
		return nil, fmt.Errorf("policy: embedded schema: %w", err)
	}
	return s, nil
})

// knownKeys maps a schema location ("#/$defs/Spec") to the property names it
// declares, for "did you mean" hints on unknown keys.
var knownKeys = sync.OnceValue(func() map[string][]string {
	out := map[string][]string{}
	var doc struct {
		Properties map[string]any `json:"properties"`
		Defs       map[string]struct {
			Properties map[string]any `json:"properties"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(schemaJSON, &doc); err != nil {
		return out
	}
	add := func(loc string, props map[string]any) {
		for k := range props {
			out[loc] = append(out[loc], k)
		}
		sort.Strings(out[loc])
	}
	add("", doc.Properties)
	for name, d := range doc.Defs {
		add("/$defs/"+name, d.Properties)
	}
	return out
})

// validateSchema validates the JSON instance (decoded with UseNumber) against
// the embedded schema and returns one FieldError per failed leaf assertion.
func validateSchema(inst any) ([]FieldError, error) {
	s, err := compiledSchema()
	if err != nil {
		return nil, err
	}
	err = s.Validate(inst)
	if err == nil {
		return nil, nil
	}
	ve, ok := err.(*jsonschema.ValidationError)
	if !ok {
		return nil, fmt.Errorf("policy: schema validation: %w", err)
	}
	var out []FieldError
	collectSchemaErrors(ve, inst, &out)
	return dedupeFieldErrors(out), nil
}

var schemaPrinter = message.NewPrinter(language.English)

func collectSchemaErrors(ve *jsonschema.ValidationError, inst any, out *[]FieldError) {
	if len(ve.Causes) > 0 {
		for _, c := range ve.Causes {
			collectSchemaErrors(c, inst, out)
		}
		return
	}
	field := instancePath(inst, ve.InstanceLocation)
	switch k := ve.ErrorKind.(type) {
	case *kind.AdditionalProperties:
		known := knownKeys()[schemaFragment(ve.SchemaURL)]
		for _, p := range k.Properties {
			*out = append(*out, FieldError{
				Field:   joinField(field, p),
				Message: "unknown field" + suggest(p, known),
			})
		}
	case *kind.Required:
		for _, m := range k.Missing {
			*out = append(*out, FieldError{Field: joinField(field, m), Message: "required field is missing"})
		}
	default:
		*out = append(*out, FieldError{Field: field, Message: schemaMessage(field, ve.ErrorKind)})
	}
}

// schemaMessage renders one schema assertion failure for a policy author.
func schemaMessage(field string, k jsonschema.ErrorKind) string {
	switch k := k.(type) {
	case *kind.Type:
		msg := fmt.Sprintf("must be %s, got %s", withArticle(strings.Join(k.Want, " or ")), k.Got)
		if (k.Got == "number" || k.Got == "boolean") && strings.Contains(strings.Join(k.Want, ","), "string") {
			// YAML 1.1 turns yes/no/on/off into booleans and 1.0 into a number.
			msg += " (quote the value in YAML)"
		}
		return msg
	case *kind.Enum:
		var want []string
		for _, w := range k.Want {
			want = append(want, strconv.Quote(fmt.Sprint(w)))
		}
		return fmt.Sprintf("must be one of %s, got %s", strings.Join(want, ", "), shortValue(k.Got))
	case *kind.Const:
		return fmt.Sprintf("must be %s, got %s", shortValue(k.Want), shortValue(k.Got))
	case *kind.MinLength:
		if k.Want == 1 {
			return "must not be empty"
		}
		return fmt.Sprintf("must be at least %d characters long", k.Want)
	case *kind.MaxLength:
		return fmt.Sprintf("must be at most %d characters long, got %d", k.Want, k.Got)
	case *kind.MinItems:
		if k.Want == 1 {
			return "must not be empty"
		}
		return fmt.Sprintf("must have at least %d items", k.Want)
	case *kind.Minimum:
		return fmt.Sprintf("must be at least %v", k.Want)
	case *kind.Maximum:
		return fmt.Sprintf("must be at most %v", k.Want)
	case *kind.Pattern:
		switch {
		case strings.HasSuffix(field, ".schema_hash"):
			return "must be sha256:<64 hex digits>, sha384:<96 hex digits> or sha512:<128 hex digits>, in lowercase"
		case field == "metadata.signature":
			return "must be <algorithm>:<base64 signature>, e.g. ed25519:..."
		}
		return fmt.Sprintf("%s does not match pattern %s", shortValue(k.Got), strconv.Quote(k.Want))
	}
	return k.LocalizedString(schemaPrinter)
}

func withArticle(s string) string {
	switch s {
	case "object", "array", "integer":
		return "an " + s
	}
	return "a " + s
}

// display quotes strings and truncates long values so that an error message
// never echoes a whole hostile document.
func shortValue(v any) string {
	var s string
	if str, ok := v.(string); ok {
		s = strconv.Quote(str)
	} else {
		s = fmt.Sprint(v)
	}
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}

// schemaFragment returns the JSON pointer part of an absolute schema
// location, without the keyword ("#/$defs/Spec/additionalProperties" →
// "/$defs/Spec").
func schemaFragment(u string) string {
	_, frag, _ := strings.Cut(u, "#")
	frag = strings.TrimSuffix(frag, "/additionalProperties")
	return frag
}

// instancePath converts a JSON-pointer token list into the dotted field path
// used in errors ("spec.tool_rules[2].allow_args.url"). It walks the
// instance so that an array index is told apart from a numeric map key.
func instancePath(inst any, loc []string) string {
	field := ""
	cur := inst
	for _, tok := range loc {
		switch v := cur.(type) {
		case []any:
			i, err := strconv.Atoi(tok)
			if err == nil && i >= 0 && i < len(v) {
				field += "[" + tok + "]"
				cur = v[i]
				continue
			}
			field = joinField(field, tok)
			cur = nil
		case map[string]any:
			field = joinField(field, tok)
			cur = v[tok]
		default:
			field = joinField(field, tok)
			cur = nil
		}
	}
	return field
}

var plainKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

// joinField appends a map key to a field path, quoting keys that would make
// the path ambiguous (dots, brackets, spaces, empty).
func joinField(field, key string) string {
	if !plainKey.MatchString(key) {
		return field + "[" + strconv.Quote(key) + "]"
	}
	if field == "" {
		return key
	}
	return field + "." + key
}

func indexField(field string, i int) string {
	return field + "[" + strconv.Itoa(i) + "]"
}

// suggest proposes the known key closest to an unknown one: an exact
// case-insensitive match first (Allowed_Tools), then a small edit distance
// (protectd_paths).
func suggest(key string, known []string) string {
	best, bestDist := "", 3
	for _, k := range known {
		if strings.EqualFold(k, key) {
			return fmt.Sprintf(" (did you mean %q? keys are case-sensitive)", k)
		}
		if d := editDistance(strings.ToLower(key), k, bestDist); d < bestDist {
			best, bestDist = k, d
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return ""
}

// editDistance is the Levenshtein distance between a and b, or max when it
// is at least max (keys are short; hostile keys are cut off early).
func editDistance(a, b string, max int) int {
	if len(a) > 64 || len(b) > 64 {
		return max
	}
	if d := len(a) - len(b); d >= max || -d >= max {
		return max
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return min(prev[len(b)], max)
}
