package dlp

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/agentid/agentid/internal/benchdata"
	"github.com/agentid/agentid/internal/testenv"
)

// toolResult4KB builds a realistic tools/call result of about 4 KB: a text
// item holding a directory listing and log lines (numbers, dates, paths,
// punctuation, newlines that are escaped in JSON) plus structuredContent.
func toolResult4KB(secret string) json.RawMessage {
	var b strings.Builder
	for i := 0; b.Len() < 3000; i++ {
		fmt.Fprintf(&b, "-rw-r--r--  1 dev  staff  %5d 2024-03-%02d 10:%02d src/pkg/module_%d/handler.go\n", 1200+i*37, i%28+1, i%60, i)
		if i%4 == 0 {
			fmt.Fprintf(&b, "INFO request completed in %d.%dms for user id=%d, status ok; retrying is not needed.\n", i, i%10, 1000+i)
		}
	}
	b.WriteString(secret)
	doc := map[string]any{
		"content": []any{map[string]any{"type": "text", "text": b.String()}},
		"structuredContent": map[string]any{
			"files": 42, "bytes": 123456, "root": "/home/dev/project", "truncated": false,
			"tags": []string{"go", "backend", "v1.2.3"},
		},
		"isError": false,
	}
	raw, _ := json.Marshal(doc)
	for len(raw) < 4096 {
		doc["structuredContent"].(map[string]any)["summary"] = strings.Repeat("All files were listed without errors. ", 1+(4096-len(raw))/38)
		raw, _ = json.Marshal(doc)
	}
	return raw
}

func benchRedactJSON(b *testing.B, raw json.RawMessage, wantChanged bool) {
	s := newScanner(b, nil, typicalPatterns...)
	res, err := s.RedactJSON(Response, raw)
	if err != nil || res.Changed != wantChanged {
		b.Fatalf("RedactJSON: changed=%v err=%v, want changed=%v; findings %v", res.Changed, err, wantChanged, res.Findings)
	}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.RedactJSON(Response, raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRedactJSON4KB_NoMatch(b *testing.B) {
	benchRedactJSON(b, toolResult4KB(""), false)
}

func BenchmarkRedactJSON4KB_Match(b *testing.B) {
	benchRedactJSON(b, toolResult4KB("creds: AKIAIOSFODNN7EXAMPLE alice@example.com password=hunter2\n"), true)
}

// BenchmarkRedactJSON4KB_RealisticMatch is the common finding: one AWS key
// in an otherwise ordinary listing.
func BenchmarkRedactJSON4KB_RealisticMatch(b *testing.B) {
	benchRedactJSON(b, toolResult4KB("aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n"), true)
}

// BenchmarkRedactJSON4KBArguments is request-side DLP on about 4 KB of
// tool-call arguments, without a match.
func BenchmarkRedactJSON4KBArguments(b *testing.B) {
	s := newScanner(b, nil, typicalPatterns...)
	raw := json.RawMessage(testenv.ToolArguments(4096))
	if res, err := s.RedactJSON(Request, raw); err != nil || res.Changed {
		b.Fatalf("RedactJSON: changed=%v err=%v", res.Changed, err)
	}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.RedactJSON(Request, raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRedactJSON4KB_Prose is the tools/call result of every proxy
// benchmark (internal/benchdata): English prose, whose common letters are
// what the case-folded anchors of "(?i)(password|secret|token)" are made of.
func BenchmarkRedactJSON4KB_Prose(b *testing.B) {
	benchRedactJSON(b, json.RawMessage(benchdata.Result()), false)
}
