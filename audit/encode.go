package audit

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/agentid/agentid/internal/jsonstr"
	"github.com/agentid/agentid/internal/strictjson"
)

// timeLayout is RFC 3339 with exactly three fractional digits, the form of
// the §8.3 example. Fixed width keeps lines sortable as text.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// appendTime appends t in UTC in timeLayout. Every record has one, and
// time.Time.AppendFormat parses its layout anew on each call.
func appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, timeLayout)
	}
	hour, minute, sec := t.Clock()
	b = appendDigits(b, year, 4)
	b = append(b, '-')
	b = appendDigits(b, int(month), 2)
	b = append(b, '-')
	b = appendDigits(b, day, 2)
	b = append(b, 'T')
	b = appendDigits(b, hour, 2)
	b = append(b, ':')
	b = appendDigits(b, minute, 2)
	b = append(b, ':')
	b = appendDigits(b, sec, 2)
	b = append(b, '.')
	b = appendDigits(b, t.Nanosecond()/1e6, 3) // truncated, as AppendFormat's .000
	return append(b, 'Z')
}

// appendDigits appends v, 0 <= v < 10^width, in width decimal digits.
func appendDigits(b []byte, v, width int) []byte {
	var d [4]byte
	for i := width - 1; i >= 0; i-- {
		d[i] = byte('0' + v%10)
		v /= 10
	}
	return append(b, d[:width]...)
}

// appendRecord appends r as a JSON object followed by "\n".
func appendRecord(b []byte, r *Record) ([]byte, error) {
	b = append(b, `{"timestamp":"`...)
	b = appendTime(b, r.Timestamp)
	b = append(b, `","direction":`...)
	b = appendString(b, r.Direction)
	b = append(b, `,"decision":`...)
	b = appendString(b, r.Decision)
	b = append(b, `,"policy_mode":`...)
	b = appendString(b, r.PolicyMode)
	b = append(b, `,"violation":`...)
	b = strconv.AppendBool(b, r.Violation)

	b = appendStringField(b, "event", r.Event)
	b = appendStringField(b, "method", r.Method)
	b = appendStringField(b, "tool", r.Tool)
	b = appendRawField(b, "args", r.Args, r.Validated)
	b = appendStringField(b, "failed_arg", r.FailedArg)
	b = appendStringField(b, "failed_rule", r.FailedRule)
	b = appendStringField(b, "reason", r.Reason)
	if r.Code != 0 {
		b = append(b, `,"code":`...)
		b = strconv.AppendInt(b, int64(r.Code), 10)
	}
	b = appendRawField(b, "id", r.ID, r.Validated)
	b = appendStringField(b, "session_id", r.SessionID)
	b = appendStringField(b, "token_id", r.TokenID)
	b = appendStringField(b, "policy_hash", r.PolicyHash)
	b = appendStringField(b, "dlp_rule", r.DLPRule)
	b = appendStringField(b, "dlp_action", r.DLPAction)
	if r.DLPMatchCount != 0 {
		b = append(b, `,"dlp_match_count":`...)
		b = strconv.AppendInt(b, int64(r.DLPMatchCount), 10)
	}
	if r.Forwarded != nil {
		b = append(b, `,"forwarded":`...)
		b = strconv.AppendBool(b, *r.Forwarded)
	}
	b = appendStringField(b, "failure_reason", r.FailureReason)

	if len(r.Extra) > 0 {
		keys := make([]string, 0, len(r.Extra))
		for k := range r.Extra {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			b = append(b, ',')
			b = appendString(b, k)
			b = append(b, ':')
			var err error
			if b, err = appendValue(b, r.Extra[k]); err != nil {
				return b, fmt.Errorf("audit: extra field %q: %w", k, err)
			}
		}
	}
	b = append(b, "}\n"...)
	return b, nil
}

func appendStringField(b []byte, key, v string) []byte {
	if v == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, key...) // keys are constants that need no escaping
	b = append(b, '"', ':')
	return appendString(b, v)
}

func appendRawField(b []byte, key string, v json.RawMessage, validated bool) []byte {
	if len(v) == 0 {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return appendRaw(b, v, validated)
}

// appendRaw appends v compacted when it is valid UTF-8 JSON, and as a JSON
// string otherwise. Compacting matters: pretty-printed JSON would split the
// record over several lines. A validated v (see Record.Validated) is only
// compacted; anything else is validated first, so that bytes which are not
// JSON can never reach the line as if they were.
func appendRaw(b []byte, v []byte, validated bool) []byte {
	if !validated && (!utf8.Valid(v) || strictjson.Validate(strictjson.Syntax, v) != nil) {
		return appendString(b, string(v))
	}
	return strictjson.AppendCompact(b, v)
}

// appendValue encodes an Extra value.
func appendValue(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendString(b, v), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case int:
		return strconv.AppendInt(b, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(b, v, 10), nil
	case int32:
		return strconv.AppendInt(b, int64(v), 10), nil
	case uint64:
		return strconv.AppendUint(b, v, 10), nil
	case uint32:
		return strconv.AppendUint(b, uint64(v), 10), nil
	case time.Time:
		b = append(b, '"')
		b = appendTime(b, v)
		return append(b, '"'), nil
	case json.RawMessage:
		if len(v) == 0 {
			return append(b, "null"...), nil
		}
		return appendRaw(b, v, false), nil
	}
	// encoding/json output is compact valid JSON; it escapes U+2028/2029
	// and replaces invalid UTF-8 itself. Control characters and bidi
	// overrides inside strings of nested values are escaped by it too
	// (controls) or left as valid JSON (bidi): acceptable for rare values.
	js, err := json.Marshal(v)
	if err != nil {
		return b, err
	}
	return append(b, js...), nil
}

// appendString appends s as a JSON string. Beyond what JSON requires it
// escapes DEL, C1 controls, U+2028/U+2029 (line terminators to JavaScript)
// and the bidirectional controls, so that a hostile tool argument cannot
// rewrite what an operator sees when viewing the log in a terminal. Invalid
// UTF-8 becomes \ufffd so the line stays valid UTF-8.
func appendString(b []byte, s string) []byte {
	return jsonstr.Append(b, s, jsonstr.EscapeTerminal)
}
