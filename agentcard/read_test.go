package agentcard

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestReadCardReadsAFileStdinOrAURL(t *testing.T) {
	card := []byte(`{"name":"a"}`)
	dir := t.TempDir()
	file := filepath.Join(dir, "card.json")
	os.WriteFile(file, card, 0o600)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != WellKnownPath {
			http.NotFound(w, r)
			return
		}
		w.Write(card)
	}))
	defer srv.Close()
	for _, tt := range []struct {
		name, src   string
		wantFetched bool
	}{
		{"a file", file, false},
		{"stdin", "-", false},
		{"an agent's base URL, from its well-known path", srv.URL, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, f, err := ReadCard(context.Background(), tt.src, ReadOptions{Stdin: strings.NewReader(string(card))})
			if err != nil || string(got) != string(card) {
				t.Fatalf("ReadCard = %q, %v", got, err)
			}
			if (f != nil) != tt.wantFetched {
				t.Fatalf("Fetched = %v, want one only for a URL", f)
			}
		})
	}
}

func TestReadCardRefusesACardOverMaxCardSize(t *testing.T) {
	big := filepath.Join(t.TempDir(), "big.json")
	os.WriteFile(big, []byte(`{"x":"`+strings.Repeat("a", MaxCardSize)+`"}`), 0o600)
	for name, o := range map[string]ReadOptions{
		"file":  {},
		"stdin": {Stdin: strings.NewReader(strings.Repeat(" ", MaxCardSize+1))},
	} {
		src := big
		if name == "stdin" {
			src = "-"
		}
		if _, _, err := ReadCard(context.Background(), src, o); err == nil || !strings.Contains(err.Error(), "more than") {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestReadCardUsesMTLSOnlyForAURL(t *testing.T) {
	file := filepath.Join(t.TempDir(), "card.json")
	os.WriteFile(file, []byte(`{}`), 0o600)
	noAgent := "unix://" + filepath.Join(t.TempDir(), "no-agent.sock")
	for _, src := range []string{file, "-"} {
		_, _, err := ReadCard(context.Background(), src, ReadOptions{Stdin: strings.NewReader("{}"), MTLSWorkloadAPI: noAgent})
		if err == nil || !strings.Contains(err.Error(), "needs a card URL") {
			t.Errorf("%s: err = %v", src, err)
		}
	}
	// A URL asks the Workload API for an SVID first.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, _, err := ReadCard(ctx, "https://agent.example/", ReadOptions{MTLSWorkloadAPI: noAgent})
	if err == nil || !strings.Contains(err.Error(), "workload API") {
		t.Fatalf("err = %v, want a workload API error", err)
	}
}
