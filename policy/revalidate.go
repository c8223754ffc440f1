package policy

import (
	"encoding/json"

	"github.com/agentid/agentid/aip"
)

// ValidateArguments re-runs the argument checks of a tool call (spec §4.3
// steps 5 and 6: allow_args patterns and strict args) on arguments the proxy
// changed, typically after request-side DLP redaction. It consumes no
// rate-limit quota and ignores monitor mode: a redaction that breaks
// validation is a redaction failure, which dlp.on_redaction_failure governs.
// The returned decision has a ViolationType when the arguments fail.
func (e *Engine) ValidateArguments(tool string, arguments json.RawMessage) Decision {
	name := NormalizeName(tool)
	d := Decision{Method: engineToolsCall, Tool: name}
	var buf [8]argMember
	args, err := argParseObject(arguments, buf[:0])
	if err != nil {
		d.Action, d.Code, d.ViolationType, d.Reason = Block, aip.CodeForbidden, aip.ViolationArgumentValidation, engineReasonArgsInvalid
		return d
	}
	rule := e.rules[name]
	if rule != nil && !e.validateArgs(rule, args, &d) {
		d.Action = Block
		return d
	}
	strict := e.strictDefault
	if rule != nil && rule.strict != nil {
		strict = *rule.strict
	}
	if strict {
		for _, m := range args {
			if rule == nil || !rule.declares(m.key) {
				d.Action, d.Code, d.ViolationType, d.Reason, d.FailedArg, d.FailedRule = Block, aip.CodeForbidden, aip.ViolationStrictArgs, engineReasonStrictArgs, m.key, "strict_args"
				return d
			}
		}
	}
	return d
}
