package policy

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"strings"

	"github.com/agentid/agentid/internal/jcs"
)

// Schema hash algorithms (AIP §3.5.4).
const (
	SchemaHashSHA256 = "sha256"
	SchemaHashSHA384 = "sha384"
	SchemaHashSHA512 = "sha512"
)

func schemaHashNew(alg string) (func() hash.Hash, int, bool) {
	switch alg {
	case SchemaHashSHA256:
		return sha256.New, sha256.Size, true
	case SchemaHashSHA384:
		return sha512.New384, sha512.Size384, true
	case SchemaHashSHA512:
		return sha512.New, sha512.Size, true
	}
	return nil, 0, false
}

// ToolSchemaHash computes the AIP §3.5.4 schema hash of one MCP tool
// definition (an element of a tools/list result's "tools" array):
// "<alg>:<lowercase hex>" of the digest of the RFC 8785 (JCS) form of
// {"name", "description", "inputSchema"} taken from it. Members the
// definition lacks are omitted rather than hashed as null, so a tool without
// a description has one well-defined hash. Every other member (title,
// annotations, outputSchema, _meta) is ignored, as the spec's pseudo-code
// does. alg is sha256, sha384 or sha512.
func ToolSchemaHash(toolDef json.RawMessage, alg string) (string, error) {
	newHash, _, ok := schemaHashNew(alg)
	if !ok {
		return "", fmt.Errorf("policy: unsupported schema hash algorithm %q (want sha256, sha384 or sha512)", alg)
	}
	members, err := argParseObject(toolDef, nil)
	if err != nil || len(argTrimSpace(toolDef)) == 0 || string(argTrimSpace(toolDef)) == "null" {
		return "", errors.New("policy: tool definition is not a JSON object")
	}
	var obj bytes.Buffer
	obj.WriteByte('{')
	hasName := false
	for _, m := range members {
		switch m.key {
		case "name", "description", "inputSchema":
		default:
			continue
		}
		if m.key == "name" {
			hasName = true
		}
		if obj.Len() > 1 {
			obj.WriteByte(',')
		}
		obj.WriteString(`"` + m.key + `":`)
		obj.Write(m.val)
	}
	obj.WriteByte('}')
	if !hasName {
		return "", errors.New("policy: tool definition has no name")
	}
	canon, err := jcs.Transform(obj.Bytes())
	if err != nil {
		return "", fmt.Errorf("policy: cannot canonicalize tool definition: %v", err)
	}
	h := newHash()
	h.Write(canon)
	return alg + ":" + hex.EncodeToString(h.Sum(nil)), nil
}

// ToolSchemaHashByName is ToolSchemaHash of the first tool in tools (a
// tools/list result's "tools") whose name is exactly name.
func ToolSchemaHashByName(tools []json.RawMessage, name, alg string) (string, error) {
	for _, t := range tools {
		var def struct {
			Name string `json:"name"`
		}
		if json.Unmarshal(t, &def) == nil && def.Name == name {
			return ToolSchemaHash(t, alg)
		}
	}
	return "", fmt.Errorf("tool %q not found among %d tools", name, len(tools))
}

// schemaHashParse validates a rule's schema_hash and returns its algorithm
// and its normalized (lowercase) form.
func schemaHashParse(s string) (alg, norm string, err error) {
	alg, digest, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return "", "", errors.New("want <algorithm>:<hex digest>")
	}
	alg = strings.ToLower(alg)
	_, size, ok := schemaHashNew(alg)
	if !ok {
		return "", "", fmt.Errorf("unsupported algorithm %q (want sha256, sha384 or sha512)", alg)
	}
	digest = strings.ToLower(digest)
	if b, err := hex.DecodeString(digest); err != nil || len(b) != size {
		return "", "", fmt.Errorf("digest must be %d hex characters for %s", 2*size, alg)
	}
	return alg, alg + ":" + digest, nil
}
