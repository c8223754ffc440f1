package enforce

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/agentid/agentid/jsonrpc"
)

// TokenMethod is the proxy's own JSON-RPC method through which a stdio client
// obtains a fresh single-use identity token for its next call. It is
// answered by the core and never forwarded. The token is then presented in
// params._meta["aip.io/token"] of the call (DESIGN.md decision 11).
const TokenMethod = "aip.io/token"

// TokenMetaKey is the params._meta member that carries a token on stdio.
const TokenMetaKey = "aip.io/token"

// buildMessage re-encodes a message whose result, error or params the core
// changed. Members keep their raw bytes; only the envelope is rebuilt.
func buildMessage(msg *jsonrpc.Message) []byte {
	var b bytes.Buffer
	b.WriteString(`{"jsonrpc":"2.0"`)
	if msg.ID != nil {
		b.WriteString(`,"id":`)
		b.Write(msg.ID)
	}
	if msg.Kind != jsonrpc.KindResponse {
		b.WriteString(`,"method":`)
		b.Write(encodeString(msg.Method))
		if msg.Params != nil {
			b.WriteString(`,"params":`)
			b.Write(msg.Params)
		}
	} else if msg.Result != nil {
		b.WriteString(`,"result":`)
		b.Write(msg.Result)
	} else {
		b.WriteString(`,"error":`)
		b.Write(msg.Error)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// replaceArguments returns msg with params.arguments replaced. Other params
// members keep their raw bytes.
func replaceArguments(msg *jsonrpc.Message, args json.RawMessage) ([]byte, error) {
	params, err := rawObject(msg.Params)
	if err != nil {
		return nil, err
	}
	params["arguments"] = args
	m := *msg
	m.Params = encodeRawObject(params)
	return buildMessage(&m), nil
}

// rawObject splits a JSON object into its members, keeping raw values.
// Its input has passed jsonrpc's strict decoding, so keys are unique.
func rawObject(data json.RawMessage) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("enforce: %w", err)
	}
	if m == nil {
		return nil, fmt.Errorf("enforce: expected a JSON object")
	}
	return m, nil
}

// encodeRawObject writes members in sorted key order with raw values.
func encodeRawObject(m map[string]json.RawMessage) json.RawMessage {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(encodeString(k))
		b.WriteByte(':')
		b.Write(m[k])
	}
	b.WriteByte('}')
	return b.Bytes()
}

// encodeString encodes s as a JSON string without HTML escaping.
func encodeString(s string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return bytes.TrimRight(b.Bytes(), "\n")
}

// stripToken removes params._meta["aip.io/token"] from a request or
// notification and returns the message to forward and the token ("" when
// none). A message without one is returned as its original bytes. A token
// that is not a string is refused: it cannot be validated, and forwarding
// it would leak whatever it is.
func stripToken(msg *jsonrpc.Message) (line []byte, token string, err error) {
	// Only a params object naming _meta can carry a token; a key can also be
	// spelled with \u escapes ("\u005fmeta"), so those are parsed too.
	if len(msg.Params) == 0 || msg.Params[0] != '{' ||
		!bytes.Contains(msg.Params, []byte("_meta")) && !bytes.Contains(msg.Params, []byte(`\u`)) {
		return msg.Raw, "", nil
	}
	// Most _meta objects (every 2026-07-28 request has one) carry no
	// token: found without decoding params into maps. topMember unescapes
	// keys and folds case, so it misses no spelling the full path takes.
	if topMember(topMember(msg.Params, "_meta"), TokenMetaKey) == nil {
		return msg.Raw, "", nil
	}
	params, err := rawObject(msg.Params)
	if err != nil {
		return nil, "", err
	}
	metaRaw, ok := params["_meta"]
	if !ok {
		return msg.Raw, "", nil
	}
	meta, err := rawObject(metaRaw)
	if err != nil {
		return nil, "", fmt.Errorf("enforce: params._meta: %w", err)
	}
	tokRaw, ok := meta[TokenMetaKey]
	if !ok {
		return msg.Raw, "", nil
	}
	// Into a variable of this branch: the named result, once its address
	// is taken, would be allocated on every call, token or not.
	var tok string
	if err := json.Unmarshal(tokRaw, &tok); err != nil {
		return nil, "", fmt.Errorf("enforce: params._meta[%q] must be a string", TokenMetaKey)
	}
	token = tok
	delete(meta, TokenMetaKey)
	if len(meta) == 0 {
		delete(params, "_meta")
	} else {
		params["_meta"] = encodeRawObject(meta)
	}
	m := *msg
	m.Params = encodeRawObject(params)
	return buildMessage(&m), token, nil
}
