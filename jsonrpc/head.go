package jsonrpc

import (
	"encoding/json"

	"github.com/agentid/agentid/internal/strictjson"
)

// IDFromHead returns the id of a message of which only the beginning is at
// hand (Reader.Head of a line too long to read), so that it can be answered:
// the top-level "id" member, when it is a string or an integer and comes
// before the cut. ok is false when there is none before the cut, or the
// beginning is not the start of a JSON object.
func IDFromHead(head []byte) (id json.RawMessage, ok bool) {
	id, ok, _ = scanHead(head)
	return id, ok
}

// RequestFromHead is IDFromHead for a message that is a request: it also
// reports whether a top-level "method" member comes before the cut (a
// response has none).
func RequestFromHead(head []byte) (id json.RawMessage, ok, isRequest bool) {
	return scanHead(head)
}

func scanHead(head []byte) (id json.RawMessage, ok, hasMethod bool) {
	s := strictjson.NewScanner(profile, head)
	defer s.Release()
	if t, err := s.Next(); err != nil || t.Kind != strictjson.Object {
		return nil, false, false
	}
	for {
		key, val, more, err := s.Member()
		if err != nil || !more {
			return id, ok, hasMethod
		}
		name := head[key.Start:key.End]
		if key.Escaped() {
			name = strictjson.AppendUnquote([]byte{'"'}, name)
			name = append(name, '"')
		}
		switch string(name) {
		case `"method"`:
			hasMethod = true
		case `"id"`:
			raw := head[val.Start:val.End]
			if (val.Kind == strictjson.String) || (val.Kind == strictjson.Number && val.Integer()) {
				id, ok = append(json.RawMessage(nil), raw...), true
			} else {
				return nil, false, hasMethod
			}
		}
		if ok && hasMethod {
			return id, ok, hasMethod
		}
	}
}
