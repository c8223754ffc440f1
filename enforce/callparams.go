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
	err := eachMember(params, func(key []byte, member, val []byte) error {
		switch string(key) {
		case "arguments":
			return nil
		case "_meta":
			if val[0] != '{' {
				break
			}
			meta := []byte{'{'}
			if err := eachMember(val, func(key, member, _ []byte) error {
				if string(key) != TokenMetaKey {
					meta = appendMember(meta, member)
				}
				return nil
			}); err != nil {
				return err
			}
			if len(meta) == 1 {
				return nil
			}
			out = appendMember(out, append(append([]byte(`"_meta":`), meta...), '}'))
			return nil
		}
		out = appendMember(out, member)
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
		p = appendMember(p, append([]byte(`"arguments":`), args...))
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

// eachMember calls f with the decoded key, the raw member ("key":value) and
// the raw value of each member of the valid JSON object obj.
func eachMember(obj []byte, f func(key, member, val []byte) error) error {
	s := strictjson.NewScanner(strictjson.Syntax, obj)
	defer s.Release()
	if t, err := s.Next(); err != nil || t.Kind != strictjson.Object {
		return errNotObject
	}
	for {
		key, val, ok, err := s.Member()
		if err != nil {
			return errNotObject
		}
		if !ok {
			return nil
		}
		if err := f(s.Text(key), obj[key.Start:val.End], obj[val.Start:val.End]); err != nil {
			return err
		}
	}
}

func appendMember(obj, member []byte) []byte {
	if len(obj) > 1 {
		obj = append(obj, ',')
	}
	return append(obj, member...)
}
