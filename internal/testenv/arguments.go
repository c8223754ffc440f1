package testenv

import (
	"fmt"
	"strings"
)

// ToolArguments returns the arguments object of a realistic tools/call of
// about size bytes: a write_file call whose content is Go source (escaped
// newlines, tabs and quotes, a little non-ASCII), with a few numbers,
// booleans and a nested object beside it. The benchmarks of the arguments
// path (decode, decide, redact, audit) share it, so their numbers add up.
func ToolArguments(size int) []byte {
	var content strings.Builder
	for i := 0; content.Len() < size-300; i++ {
		fmt.Fprintf(&content, "func handler%d(w http.ResponseWriter, r *http.Request) {\n\tlog.Printf(\"request %%d from %%s — ok\", %d, r.RemoteAddr)\n\tw.Write([]byte(\"done\\n\"))\n}\n\n", i, i)
	}
	var b strings.Builder
	b.WriteString(`{"path":"/home/user/projects/agentid/internal/server/handlers.go","content":`)
	b.WriteString(quote(content.String()))
	b.WriteString(`,"mode":420,"create_dirs":true,"options":{"encoding":"utf-8","backup":false,"max_bytes":65536,"tags":["go","backend","v1.2.3"]}}`)
	return []byte(b.String())
}

// quote writes s as a JSON string with the escapes encoding/json uses for
// control characters and quotes; the content holds no HTML characters.
func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`)
	return `"` + r.Replace(s) + `"`
}
