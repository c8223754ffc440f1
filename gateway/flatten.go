package gateway

import "bytes"

// flatten turns a JSON message spread over several lines (pretty-printed,
// or ending in a newline as Go's json.Encoder writes it) into one line, as
// the core decides messages: HTTP bodies and event data may hold line
// breaks, stdio lines may not. Outside strings a line break is only
// whitespace, so it becomes a space and the message means what it meant;
// a raw line break inside a string is invalid JSON, and the message is
// returned unchanged for the core to refuse.
func flatten(b []byte) []byte {
	if bytes.IndexByte(b, '\n') < 0 && bytes.IndexByte(b, '\r') < 0 {
		return b
	}
	out := make([]byte, len(b))
	inString, escaped := false, false
	for i, c := range b {
		out[i] = c
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case c == '\n' || c == '\r':
			if inString {
				return b
			}
			out[i] = ' '
		}
	}
	return bytes.TrimRight(out, " ")
}
