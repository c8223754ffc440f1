// Package benchdata is the one workload of every benchmark of the proxy
// path (the enforcement core, the stdio relay, tools/latencybench): a
// policy allowing read_file with an argument pattern, the 10 DLP patterns
// that the "with DLP" configurations add, and the 4 KB text a tools/call
// returns. Benchmarks that share it can be compared with each other.
package benchdata

import "strings"

// Policy allows read_file with a path under /data.
const Policy = `apiVersion: aip.io/v1alpha2
kind: AgentPolicy
metadata: {name: bench}
spec:
  allowed_tools: [read_file]
  tool_rules:
    - tool: read_file
      allow_args:
        path: "^/data/[a-z0-9_./-]+$"
`

// DLP is a spec.dlp block of 10 realistic patterns, to append to Policy.
const DLP = `  dlp:
    patterns:
      - {name: AWS Key, regex: "(AKIA|ASIA)[A-Z0-9]{16}"}
      - {name: GitHub Token, regex: "gh[pousr]_[A-Za-z0-9]{36}"}
      - {name: Email, regex: "[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\\.[a-zA-Z]{2,}"}
      - {name: SSN, regex: "\\b\\d{3}-\\d{2}-\\d{4}\\b"}
      - {name: Credit Card, regex: "\\b(?:\\d{4}[- ]?){3}\\d{4}\\b"}
      - {name: Private Key, regex: "-----BEGIN (RSA |EC |DSA |OPENSSH )?PRIVATE KEY-----"}
      - {name: JWT, regex: "eyJ[A-Za-z0-9_-]{10,}\\.[A-Za-z0-9_-]{10,}\\.[A-Za-z0-9_-]{10,}"}
      - {name: Generic Secret, regex: "(?i)(password|secret|token)\\s*[:=]\\s*\\S+"}
      - {name: Slack Token, regex: "xox[baprs]-[A-Za-z0-9-]{10,}"}
      - {name: IPv4, regex: "\\b(?:\\d{1,3}\\.){3}\\d{1,3}\\b"}
`

// Text is the 4,000-byte text of a tools/call result: plain prose that no
// DLP pattern matches and that needs no JSON escaping.
var Text = strings.Repeat("The quarterly report lists revenue, costs and outlook for each region. ", 58)[:4000]

// Result is the tools/call result object carrying Text.
func Result() string { return `{"content":[{"type":"text","text":"` + Text + `"}]}` }
