package enforce

import (
	"bytes"
	"encoding/json"

	"github.com/agentid/agentid/aip"
	"github.com/agentid/agentid/internal/strictjson"
	"github.com/agentid/agentid/jsonrpc"
	"github.com/agentid/agentid/policy"
)

// In MCP 2026-07-28 the server no longer sends the client requests of its
// own: what it asks (sampling/createMessage, elicitation/create,
// roots/list) travels inside the inputRequests of an input_required result.
// denied_methods governs those as it governs server→client requests
// (docs/decisions.md), or a policy that denies sampling would deny it only
// to servers of the 2025 era.

// asksForInput reports whether result, answering method, asks for input:
// the one walk of a result that does not.
func asksForInput(method string, result []byte) bool {
	switch method {
	case "tools/call", "prompts/get", "resources/read":
		_, _, ok := inputRequired(result)
		return ok
	}
	return false // servers MUST NOT ask for input on other requests
}

// inputRequestDenied applies denied_methods to the methods of the
// inputRequests of a result that asks for input, and reports whether the
// client was answered -32006 instead of the result: the server cannot be
// told (its request ended with the result), and a client that got the rest
// of the result would retry without the denied answer. Monitor mode
// delivers the result and audits the violation.
func (c *Core) inputRequestDenied(st *snapshot, msg *jsonrpc.Message, v *Verdict) bool {
	requests := topMember(msg.Result, "inputRequests")
	if len(requests) == 0 || requests[0] != '{' {
		return false
	}
	denied := ""
	_ = eachMember(requests, func(_, _, req []byte) error {
		var name string
		_ = eachMember(req, func(key, _, val []byte) error {
			if strictjson.EqualFold(key, []byte("method")) {
				_ = json.Unmarshal(val, &name)
			}
			return nil
		})
		dec := st.Engine.DecideServerMethod(name)
		if dec.ViolationType == "" || denied != "" {
			return nil
		}
		rec := decisionRecord(dec, msg, nil, "")
		rec.Direction, rec.Method = aip.Downstream, name
		rec.Reason = dec.Reason + " (requested in inputRequests)"
		v.record(rec)
		if dec.Action == policy.Block {
			denied = name
		}
		return nil
	})
	if denied == "" {
		return false
	}
	v.reply(msg.ID, aip.CodeMethodNotAllowed, map[string]any{"method": denied, "reason": "The server asked for input by a method the policy denies"})
	return true
}

// walkTop calls f with the key (decoded) and the value of each member of
// the object obj (validated JSON) until f returns false. It runs on every
// result that can ask for input, so it skips strings with bytes.IndexByte:
// a result is mostly one long text.
func walkTop(obj []byte, f func(key, val []byte) bool) {
	i := skipWS(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return
	}
	var unquoted []byte // allocated only for a key with escapes
	for i = skipWS(obj, i+1); i < len(obj) && obj[i] == '"'; {
		kEnd := skipString(obj, i+1)
		lit := obj[i:kEnd]
		i = skipWS(obj, kEnd)
		if i < len(obj) && obj[i] == ':' {
			i = skipWS(obj, i+1)
		}
		vEnd := skipValue(obj, i)
		key := lit[1 : len(lit)-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			unquoted = strictjson.AppendUnquote(unquoted[:0], lit)
			key = unquoted
		}
		if !f(key, obj[i:vEnd]) {
			return
		}
		i = skipWS(obj, vEnd)
		if i < len(obj) && obj[i] == ',' {
			i = skipWS(obj, i+1)
		}
	}
}

// topMember returns the value of the member of obj whose key folds to name,
// as a client library may match it; nil when there is none.
func topMember(obj []byte, name string) []byte {
	var v []byte
	walkTop(obj, func(key, val []byte) bool {
		if strictjson.EqualFold(key, []byte(name)) {
			v = val
			return false
		}
		return true
	})
	return v
}

// skipString returns the offset just past the closing quote of the string
// whose body starts at b[i].
func skipString(b []byte, i int) int {
	for {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			return len(b)
		}
		q := i + j
		escaped := false
		for k := q - 1; k >= i && b[k] == '\\'; k-- {
			escaped = !escaped
		}
		if !escaped {
			return q + 1
		}
		i = q + 1
	}
}

// skipValue returns the offset just past the value that starts at b[i].
func skipValue(b []byte, i int) int {
	depth := 0
	for i < len(b) {
		switch b[i] {
		case '"':
			i = skipString(b, i+1)
			if depth == 0 {
				return i
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i // the end of a number or literal
			}
			if depth--; depth == 0 {
				return i + 1
			}
		case ',', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return i
			}
		}
		i++
	}
	return i
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}
