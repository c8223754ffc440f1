package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
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
	js, err := yamlToJSON(data)
	if err != nil {
		return nil, nil, err
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
