package dlp

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/agentid/agentid/internal/testenv"

	"sigs.k8s.io/yaml"

	"github.com/agentid/agentid/policy"
)

type dlpVectors struct {
	Tests []struct {
		ID     string `json:"id"`
		Policy string `json:"policy"`
		Input  struct {
			Type    string `json:"type"`
			Content string `json:"content"`
		} `json:"input"`
		Expected struct {
			Redacted  *bool     `json:"redacted"`
			Output    *string   `json:"output"`
			DLPEvents []Finding `json:"dlp_events"`
		} `json:"expected"`
	} `json:"tests"`
}

func TestConformanceVectorsDLP(t *testing.T) {
	path := filepath.Join("..", "..", "shared", "spec", "aip", "conformance", "full", "dlp.yaml")
	data, err := os.ReadFile(path)
	testenv.RequireComponent(t, "the conformance vectors in ../shared", err)
	var v dlpVectors
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Tests) == 0 {
		t.Fatal("no vectors")
	}
	for _, tc := range v.Tests {
		t.Run(tc.ID, func(t *testing.T) {
			if tc.Input.Type != "response" {
				t.Skipf("input type %q is not a response", tc.Input.Type)
			}
			var p policy.Policy
			if err := yaml.Unmarshal([]byte(tc.Policy), &p); err != nil {
				t.Fatal(err)
			}
			s, err := New(p.Spec.DLP)
			if err != nil {
				t.Fatal(err)
			}
			got, findings := s.RedactString(Response, tc.Input.Content)
			if want := tc.Expected.Output; want != nil && got != *want {
				t.Errorf("output %q, want %q", got, *want)
			}
			if want := tc.Expected.Redacted; want != nil && (got != tc.Input.Content) != *want {
				t.Errorf("redacted = %v, want %v", got != tc.Input.Content, *want)
			}
			if want := tc.Expected.DLPEvents; want != nil && !reflect.DeepEqual(findings, want) && !(len(want) == 0 && findings == nil) {
				t.Errorf("findings %v, want %v", findings, want)
			}
		})
	}
}
