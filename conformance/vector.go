package conformance

import (
	"encoding/json"
	"fmt"
	"os"

	"sigs.k8s.io/yaml"
)

// vectorFile is one YAML file of the AIP conformance suite.
type vectorFile struct {
	Name  string            `json:"name"`
	Tests []json.RawMessage `json:"tests"`
}

// vector is one test case. Only the keys the runner understands are typed;
// the identity and server shapes (sequences, steps, HTTP requests) are kept
// raw so that their presence can be reported.
type vector struct {
	ID          string    `json:"id"`
	Description string    `json:"description"`
	Policy      *string   `json:"policy"`
	Input       *input    `json:"input"`
	Expected    *expected `json:"expected"`

	Sequence       json.RawMessage `json:"sequence"`
	Steps          json.RawMessage `json:"steps"`
	Setup          json.RawMessage `json:"setup"`
	Policies       json.RawMessage `json:"policies"`
	PolicySequence json.RawMessage `json:"policy_sequence"`
	HTTPRequest    json.RawMessage `json:"http_request"`
}

type input struct {
	Method    string          `json:"method"`
	Tool      *string         `json:"tool"`
	Args      json.RawMessage `json:"args"`
	RequestID json.RawMessage `json:"request_id"`
	Context   *struct {
		PreviousCalls int    `json:"previous_calls"`
		UserResponse  string `json:"user_response"`
	} `json:"context"`
	Type    string          `json:"type"`
	Content string          `json:"content"`
	Token   json.RawMessage `json:"token"`
}

type expected struct {
	Decision       string          `json:"decision"`
	ErrorCode      json.RawMessage `json:"error_code"` // absent: unchecked; null: no error
	ErrorMessage   *string         `json:"error_message"`
	ErrorData      json.RawMessage `json:"error_data"`
	Violation      *bool           `json:"violation"`
	ResponseFormat json.RawMessage `json:"response_format"`
	Redacted       *bool           `json:"redacted"`
	Output         *string         `json:"output"`
	DLPEvents      *[]struct {
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

// needsIdentity reports whether a vector exercises tokens, sequences or the
// HTTP server rather than one message through the proxy.
func (v *vector) needsIdentity() bool {
	return v.Sequence != nil || v.Steps != nil || v.Setup != nil || v.Policies != nil ||
		v.PolicySequence != nil || v.HTTPRequest != nil || (v.Input != nil && v.Input.Token != nil)
}
