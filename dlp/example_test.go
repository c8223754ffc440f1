package dlp_test

import (
	"fmt"
	"log"

	"github.com/agentid/agentid/dlp"
	"github.com/agentid/agentid/policy"
)

func ExampleScanner_RedactJSON() {
	s, err := dlp.New(&policy.DLP{Patterns: []policy.DLPPattern{
		{Name: "AWS Key", Regex: `AKIA[0-9A-Z]{16}`},
		{Name: "Email", Regex: `[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}`},
	}})
	if err != nil {
		log.Fatal(err)
	}
	result := []byte(`{"content":[{"type":"text","text":"key AKIAIOSFODNN7EXAMPLE"}],` +
		`"structuredContent":{"owner":"alice@example.com","size":42}}`)
	res, err := s.RedactJSON(dlp.Response, result)
	if err != nil {
		log.Fatal(err) // not JSON: withhold the message
	}
	fmt.Println(string(res.Data))
	for _, f := range res.Findings {
		fmt.Printf("%s: %d\n", f.Rule, f.Count)
	}
	// Output:
	// {"content":[{"type":"text","text":"key [REDACTED:AWS Key]"}],"structuredContent":{"owner":"[REDACTED:Email]","size":42}}
	// AWS Key: 1
	// Email: 1
}
