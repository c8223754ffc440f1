package enforce

import (
	"encoding/json"
	"errors"

	"github.com/agentid/agentid/internal/strictjson"
)

// callSiblings returns the members of a tools/call params object other
// than "arguments", as a JSON object of their raw bytes, without the
// identity token (params._meta[TokenMetaKey], which never leaves the core;
// a _meta left empty is dropped, as stripToken drops it). Request DLP scans
// it besides the arguments: _meta and any other member reach the server as
// surely, and keys are scanned as well as values. params passed jsonrpc's
// strict decoding, so it is only walked here, not validated again.
func callSiblings(params json.RawMessage) (json.RawMessage, error) {
	out := []byte{'{'}
	err := eachMember(params, func(key, lit, val []byte) error {
		switch string(key) {
		case "arguments":
			return nil
		case "_meta":
			if len(val) == 0 || val[0] != '{' {
				break
			}
			meta := []byte{'{'}
			if err := eachMember(val, func(key, lit, val []byte) error {
				if string(key) != TokenMetaKey {
					meta = appendMember(meta, lit, val)
				}
				return nil
			}); err != nil {
				return err
			}
			if len(meta) == 1 {
				return nil
			}
			out = appendMember(out, lit, append(meta, '}'))
			return nil
		}
		out = appendMember(out, lit, val)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return append(out, '}'), nil
}

// withSiblings returns the params object made of the members of siblings
// (an object from callSiblings, possibly redacted) and, when args is not
// nil, "arguments": args.
func withSiblings(siblings, args json.RawMessage) json.RawMessage {
	// RedactJSON keeps every byte but the literals it rewrites, so siblings
	// is still the '{' ... '}' callSiblings built.
	p := append([]byte(nil), siblings[:len(siblings)-1]...)
	if args != nil {
		p = appendMember(p, []byte(`"arguments"`), args)
	}
	return append(p, '}')
}

// memberValue returns the raw value of the member key of the object obj,
// nil when there is none.
func memberValue(obj json.RawMessage, key string) []byte {
	var v []byte
	_ = eachMember(obj, func(k, _, val []byte) error {
		if v == nil && string(k) == key {
			v = val
		}
		return nil
	})
	return v
}

var errNotObject = errors.New("enforce: expected a JSON object")

// eachMember calls f with the decoded key, the key literal and the raw
// value of each member of obj, an object jsonrpc validated, which
// is only split here (strictjson.NextMember), not validated again.
func eachMember(obj []byte, f func(key, lit, val []byte) error) error {
	if len(obj) == 0 || obj[0] != '{' {
		return errNotObject
	}
	var text []byte
	for i := 1; ; {
		key, val, next, ok := strictjson.NextMember(obj, i)
		if !ok {
			return nil
		}
		text = strictjson.AppendUnquote(text[:0], key)
		if err := f(text, key, val); err != nil {
			return err
		}
		i = next
	}
}

// appendMember appends the member lit:val to the object obj, which has
// its opening brace and not its closing one.
func appendMember(obj, lit, val []byte) []byte {
	if len(obj) > 1 {
		obj = append(obj, ',')
	}
	obj = append(obj, lit...)
	obj = append(obj, ':')
	return append(obj, val...)
}
