package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	yamlv2 "go.yaml.in/yaml/v2"
	"sigs.k8s.io/yaml"
)

// Limits on what a policy document may cost to load. A real policy is a few
// kilobytes; the limits exist so that a hostile or corrupted file fails fast
// instead of exhausting memory.
const (
	// MaxDocumentSize is the largest policy file accepted, in bytes.
	MaxDocumentSize = 4 << 20
	// maxExpandedSize bounds the size of the document after YAML aliases are
	// expanded (estimated as JSON bytes). yaml.v2 limits the alias/node
	// ratio, but not the bytes a few aliases to one huge scalar produce.
	maxExpandedSize = 16 << 20
	// maxDepth bounds nesting. The deepest legitimate path is
	// spec.server.fail_open_constraints.allowed_tools[i], depth 5.
	maxDepth = 32
)

// Load reads the policy file at path, validates it and returns the policy
// with any warnings. p.Path is the absolute, cleaned path and p.Raw the bytes
// read. Validation failures are reported as a *LoadError listing every
// problem found; I/O failures wrap the underlying error (errors.Is works with
// fs.ErrNotExist).
func Load(path string) (*Policy, []Warning, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, nil, fmt.Errorf("policy: %w", err)
	}
	f, err := os.Open(abs)
	if err != nil {
		return nil, nil, fmt.Errorf("policy: %w", err)
	}
	defer f.Close()
	// Read one byte past the limit to tell "exactly at the limit" from "over".
	data, err := io.ReadAll(io.LimitReader(f, MaxDocumentSize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("policy: read %s: %w", abs, err)
	}
	p, warns, err := parse(data, false)
	if err != nil {
		return nil, warns, err
	}
	p.Path = filepath.Clean(abs)
	return p, warns, nil
}

// Parse validates an in-memory policy document (YAML or JSON). p.Raw holds a
// copy of data and p.Path is empty.
func Parse(data []byte) (*Policy, []Warning, error) {
	return parse(data, true)
}

// Check loads the policy at path and returns its warnings; it is what
// `agentid policy check` reports.
func Check(path string) ([]Warning, error) {
	_, warns, err := Load(path)
	return warns, err
}

func parse(data []byte, copyRaw bool) (*Policy, []Warning, error) {
	if len(data) > MaxDocumentSize {
		return nil, nil, docError(fmt.Sprintf("document is larger than %d bytes", MaxDocumentSize))
	}
	if err := preflightYAML(data); err != nil {
		return nil, nil, err
	}
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, nil, docError("invalid YAML: " + trimYAMLError(err))
	}
	// The schema library wants numbers as json.Number so that 1e400 or a
	// 30-digit integer is judged exactly rather than rounded.
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		return nil, nil, docError("invalid document: " + err.Error())
	}

	schemaErrs, err := validateSchema(inst)
	if err != nil {
		return nil, nil, err
	}
	var warns []Warning
	if m, ok := inst.(map[string]any); ok && m["apiVersion"] == APIVersionV1Alpha1 {
		warns = append(warns, v1alpha2OnlyWarnings(m)...)
	}

	p := &Policy{}
	if len(schemaErrs) == 0 {
		// The schema has pinned every key to its exact spelling, so the
		// case-insensitive matching of encoding/json can no longer widen what
		// is accepted; DisallowUnknownFields keeps the struct and the schema
		// honest with each other.
		dec := json.NewDecoder(bytes.NewReader(js))
		dec.DisallowUnknownFields()
		if err := dec.Decode(p); err != nil {
			return nil, warns, &LoadError{Errors: []FieldError{{Message: "decode: " + err.Error()}}}
		}
	} else {
		// Decode what we can so that the semantic checks below can report
		// their findings too; the document is rejected either way.
		_ = json.Unmarshal(js, p)
	}

	semErrs, semWarns := validatePolicy(p)
	warns = append(warns, semWarns...)
	sortWarnings(warns)
	errs := mergeErrors(schemaErrs, semErrs)
	if len(errs) > 0 {
		return nil, warns, &LoadError{Errors: errs}
	}
	if copyRaw {
		p.Raw = bytes.Clone(data)
	} else {
		p.Raw = data
	}
	return p, warns, nil
}

// preflightYAML parses the document once with yaml.v2 to reject what the
// YAML-to-JSON conversion would silently accept or blow up on: a second
// document, non-string keys (YAML 1.1 turns `on:` into true and `1:` into an
// integer, which the conversion would stringify), non-finite numbers, and
// alias expansion beyond maxExpandedSize.
func preflightYAML(data []byte) error {
	dec := yamlv2.NewDecoder(bytes.NewReader(data))
	dec.SetStrict(true)
	var doc any
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return docError("empty document")
		}
		return docError("invalid YAML: " + trimYAMLError(err))
	}
	// Fail closed on a second document: a tool that reads only the first one
	// and a reviewer who reads the whole file must not see different policies.
	var next any
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return docError("invalid YAML: " + trimYAMLError(err))
	default:
		return docError("multiple YAML documents are not allowed")
	}
	if _, ok := doc.(map[any]any); !ok {
		if doc == nil {
			return docError("empty document")
		}
		return docError("document must be a mapping")
	}
	w := treeWalker{budget: maxExpandedSize}
	return w.walk(doc, "", 0)
}

type treeWalker struct {
	budget int
}

func (w *treeWalker) spend(n int) error {
	w.budget -= n
	if w.budget < 0 {
		return docError(fmt.Sprintf("document expands to more than %d bytes (YAML aliases?)", maxExpandedSize))
	}
	return nil
}

func (w *treeWalker) walk(v any, field string, depth int) error {
	if depth > maxDepth {
		return &LoadError{Errors: []FieldError{{Field: field, Message: fmt.Sprintf("nested deeper than %d levels", maxDepth)}}}
	}
	if err := w.spend(8); err != nil {
		return err
	}
	switch v := v.(type) {
	case map[any]any:
		for k, child := range v {
			ks, ok := k.(string)
			if !ok {
				msg := fmt.Sprintf("non-string key %s (quote it)", shortValue(fmt.Sprintf("%v", k)))
				if _, isBool := k.(bool); isBool {
					// The conversion to JSON would turn `n:` into "false".
					msg = fmt.Sprintf("non-string key %v (YAML 1.1 reads y, n, yes, no, on and off as booleans; quote the key)", k)
				}
				return &LoadError{Errors: []FieldError{{Field: field, Message: msg}}}
			}
			if err := w.spend(len(ks)); err != nil {
				return err
			}
			if err := w.walk(child, joinField(field, ks), depth+1); err != nil {
				return err
			}
		}
	case []any:
		for i, child := range v {
			if err := w.walk(child, indexField(field, i), depth+1); err != nil {
				return err
			}
		}
	case string:
		return w.spend(len(v))
	case float64:
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return &LoadError{Errors: []FieldError{{Field: field, Message: "non-finite number"}}}
		}
	}
	return nil
}

func docError(msg string) error {
	return &LoadError{Errors: []FieldError{{Message: msg}}}
}

// trimYAMLError drops the library's "yaml: " / "error converting YAML to
// JSON: " prefixes, which would stutter after ours.
func trimYAMLError(err error) string {
	s := err.Error()
	for _, p := range []string{"error converting YAML to JSON: ", "yaml: "} {
		if len(s) >= len(p) && s[:len(p)] == p {
			s = s[len(p):]
		}
	}
	// yaml.v2 lists type errors one per indented line.
	s = strings.ReplaceAll(s, "unmarshal errors:\n  ", "")
	return strings.ReplaceAll(s, "\n  ", "; ")
}

// v1alpha2OnlyWarnings flags v1alpha2 fields in a v1alpha1 document. They are
// honoured, not ignored: silently dropping identity or DLP settings would
// weaken the policy the author wrote.
func v1alpha2OnlyWarnings(doc map[string]any) []Warning {
	var out []Warning
	warn := func(field string) {
		out = append(out, Warning{Field: field, Message: "is a v1alpha2 field in an aip.io/v1alpha1 document; it is applied, but set apiVersion: aip.io/v1alpha2"})
	}
	if md, ok := doc["metadata"].(map[string]any); ok {
		if _, ok := md["signature"]; ok {
			warn("metadata.signature")
		}
	}
	spec, ok := doc["spec"].(map[string]any)
	if !ok {
		return out
	}
	for _, k := range []string{"identity", "server"} {
		if _, ok := spec[k]; ok {
			warn("spec." + k)
		}
	}
	if rules, ok := spec["tool_rules"].([]any); ok {
		for i, r := range rules {
			if rm, ok := r.(map[string]any); ok {
				if _, ok := rm["schema_hash"]; ok {
					warn(indexField("spec.tool_rules", i) + ".schema_hash")
				}
			}
		}
	}
	if dlp, ok := spec["dlp"].(map[string]any); ok {
		for _, k := range []string{"scan_requests", "scan_responses", "max_scan_size", "on_request_match", "on_redaction_failure", "log_original_on_failure"} {
			if _, ok := dlp[k]; ok {
				warn("spec.dlp." + k)
			}
		}
		if pats, ok := dlp["patterns"].([]any); ok {
			for i, pt := range pats {
				if pm, ok := pt.(map[string]any); ok {
					if _, ok := pm["scope"]; ok {
						warn(indexField("spec.dlp.patterns", i) + ".scope")
					}
				}
			}
		}
	}
	return out
}
