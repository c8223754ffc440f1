package conformance

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// vectorFile is one YAML file of the AIP conformance suite.
type vectorFile struct {
	Name  string            `json:"name"`
	Tests []json.RawMessage `json:"tests"`
}

// probe is what dispatch needs to know of a vector. It is decoded
// leniently; the harness that executes the vector decodes it again, strictly
// (decodeStrict), into the type of its shape.
type probe struct {
	ID    string `json:"id"`
	Input *struct {
		Token json.RawMessage `json:"token"`
	} `json:"input"`
	TestType       string          `json:"test_type"`
	Sequence       json.RawMessage `json:"sequence"`
	Steps          json.RawMessage `json:"steps"`
	Setup          json.RawMessage `json:"setup"`
	Policies       json.RawMessage `json:"policies"`
	PolicySequence json.RawMessage `json:"policy_sequence"`
	HTTPRequest    json.RawMessage `json:"http_request"`
}

// needsIdentity reports whether a vector exercises tokens, sequences or the
// HTTP server rather than one message through the proxy.
func (p *probe) needsIdentity() bool {
	return p.Sequence != nil || p.Steps != nil || p.Setup != nil || p.Policies != nil ||
		p.PolicySequence != nil || p.HTTPRequest != nil || p.TestType != "" ||
		(p.Input != nil && p.Input.Token != nil)
}

// proxyVector is a basic/full vector: one message through the proxy.
type proxyVector struct {
	ID          string      `json:"id"`
	Description string      `json:"description"`
	Note        string      `json:"note"`
	Policy      *string     `json:"policy"`
	Input       *proxyInput `json:"input"`
	Expected    *expected   `json:"expected"`
}

type proxyInput struct {
	Method    string          `json:"method"`
	Tool      *string         `json:"tool"`
	Args      json.RawMessage `json:"args"`
	RequestID json.RawMessage `json:"request_id"`
	Context   *callContext    `json:"context"`
	// Type "response" makes a DLP vector: Content is what the server
	// answers.
	Type    string  `json:"type"`
	Content *string `json:"content"`
}

// callContext is what happened before the call.
type callContext struct {
	PreviousCalls int    `json:"previous_calls"`
	Window        string `json:"window"` // the previous calls fall within it
	UserResponse  string `json:"user_response"`
}

// callExpected are the expectations on the answer to one call, shared by
// every level.
type callExpected struct {
	Decision       string          `json:"decision"`
	ErrorCode      json.RawMessage `json:"error_code"` // absent: unchecked; null: no error
	ErrorMessage   *string         `json:"error_message"`
	ErrorData      json.RawMessage `json:"error_data"`
	Violation      *bool           `json:"violation"`
	ResponseFormat json.RawMessage `json:"response_format"`
}

// expected is the expected section of a basic/full vector.
type expected struct {
	callExpected
	Redacted  *bool   `json:"redacted"`
	Output    *string `json:"output"`
	DLPEvents *[]struct {
		Rule  string `json:"rule"`
		Count int    `json:"count"`
	} `json:"dlp_events"`
}

// loadFile reads one vector file. The vectors are trusted test data, but
// they are still decoded without panicking on surprises.
func loadFile(path string) (*vectorFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("conformance: %w", err)
	}
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("conformance: %s: %w", path, err)
	}
	var f vectorFile
	if err := json.Unmarshal(js, &f); err != nil {
		return nil, fmt.Errorf("conformance: %s: %w", path, err)
	}
	return &f, nil
}

// decodeStrict decodes data into v (a pointer) and refuses every object
// member that v's type has no field for, naming it by its path below prefix
// (e.g. "expected.token_idd", "input.context.window"): a key the runner does
// not understand fails the vector instead of being silently ignored.
// Members typed json.RawMessage or any are opaque here; whoever reads them
// checks them.
func decodeStrict(data []byte, v any, prefix string) error {
	if unknown := unknownKeys(data, reflect.TypeOf(v), prefix); len(unknown) > 0 {
		return fmt.Errorf("the runner does not understand %s", strings.Join(unknown, ", "))
	}
	if err := json.Unmarshal(data, v); err != nil {
		if prefix != "" {
			return fmt.Errorf("%s: %w", prefix, err)
		}
		return err
	}
	return nil
}

var rawMessageType = reflect.TypeOf(json.RawMessage(nil))

// unknownKeys lists the members of the JSON value data that type t does not
// declare, recursively, as paths below path.
func unknownKeys(data []byte, t reflect.Type, path string) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == rawMessageType {
		return nil
	}
	var out []string
	switch t.Kind() {
	case reflect.Struct:
		var obj map[string]json.RawMessage
		if json.Unmarshal(data, &obj) != nil {
			return nil // not an object: json.Unmarshal reports the type
		}
		fields := jsonFields(t)
		for _, k := range sortedKeys(obj) {
			ft, ok := fields[k]
			if !ok {
				out = append(out, fmt.Sprintf("key %q", joinPath(path, k)))
				continue
			}
			out = append(out, unknownKeys(obj[k], ft, joinPath(path, k))...)
		}
	case reflect.Slice:
		var arr []json.RawMessage
		if json.Unmarshal(data, &arr) != nil {
			return nil
		}
		for i, e := range arr {
			out = append(out, unknownKeys(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i))...)
		}
	case reflect.Map:
		var obj map[string]json.RawMessage
		if json.Unmarshal(data, &obj) != nil {
			return nil
		}
		for _, k := range sortedKeys(obj) {
			out = append(out, unknownKeys(obj[k], t.Elem(), joinPath(path, k))...)
		}
	}
	return out
}

// jsonFields maps the JSON member names of struct type t (with embedded
// structs' fields promoted, as encoding/json does) to their types. Names
// match exactly: a case variant is unknown.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range jsonFields(ft) {
					m[k] = v
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = f.Type
	}
	return m
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
