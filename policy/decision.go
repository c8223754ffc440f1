package policy

import "github.com/agentid/agentid/aip"

// Action is what the caller must do with a message after a decision.
type Action uint8

const (
	// Allow: forward the message.
	Allow Action = iota
	// Block: answer with the decision's AIP error; do not forward.
	Block
	// Ask: obtain human approval (package approve) before forwarding.
	Ask
)

func (a Action) String() string {
	switch a {
	case Allow:
		return "ALLOW"
	case Block:
		return "BLOCK"
	case Ask:
		return "ASK"
	}
	return "UNKNOWN"
}

// Decision is the outcome of evaluating one method or tool call.
type Decision struct {
	// Action is final: monitor mode has already been applied.
	Action Action
	// Code is the AIP JSON-RPC error code of the violation (-32001, -32002,
	// -32006, -32007, -32013), also set when monitor mode let it through.
	Code int
	// Reason is a short, non-revealing explanation, e.g.
	// "Tool not in allowed_tools list".
	Reason string
	// ViolationType is one of the Violation* constants; "" when none.
	ViolationType string
	// FailedArg names the argument that failed validation or held a
	// protected path.
	FailedArg string
	// FailedRule identifies the rule or pattern that failed.
	FailedRule string
	// Monitored is true when monitor mode forwarded a violation.
	Monitored bool
	// Method and Tool are the normalized names that were evaluated.
	Method string
	Tool   string
}

// Violation reports whether the decision found a policy violation.
func (d Decision) Violation() bool { return d.ViolationType != "" }

// AuditDecision is the §8.1 `decision` value for the audit log.
func (d Decision) AuditDecision() string {
	switch {
	case d.ViolationType == aip.ViolationRateLimited:
		return aip.AuditRateLimited
	case d.Monitored:
		return aip.AuditAllowMonitor
	case d.Action == Block:
		return aip.AuditBlock
	}
	return aip.AuditAllow
}
