package proxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/agentid/agentid/aip"
	"github.com/agentid/agentid/policy"
)

// toolCatalog remembers the tools the server advertised, so that a tools/call
// reaches exactly a tool the policy decided on (DESIGN.md decision 2) and
// pinned schema hashes can be checked.
type toolCatalog struct {
	seen   bool
	byRaw  map[string]json.RawMessage // raw name → definition
	byNorm map[string]int             // normalized name → number of raw names
	hashes map[string]string          // raw name + "\x00" + alg → hash
}

func (c *toolCatalog) reset() { *c = toolCatalog{} }

func (c *toolCatalog) add(name string, def json.RawMessage) {
	if c.byRaw == nil {
		c.byRaw = make(map[string]json.RawMessage)
		c.byNorm = make(map[string]int)
		c.hashes = make(map[string]string)
	}
	if _, ok := c.byRaw[name]; !ok {
		c.byNorm[policy.NormalizeName(name)]++
	}
	c.byRaw[name] = def
	for k := range c.hashes {
		if strings.HasPrefix(k, name+"\x00") {
			delete(c.hashes, k)
		}
	}
	c.seen = true
}

func (c *toolCatalog) ambiguous(name string) bool {
	return c.byNorm[policy.NormalizeName(name)] > 1
}

// hash returns the schema hash of an advertised tool, "" when unknown.
func (c *toolCatalog) hash(name, alg string) string {
	def, ok := c.byRaw[name]
	if !ok {
		return ""
	}
	key := name + "\x00" + alg
	if h, ok := c.hashes[key]; ok {
		return h
	}
	h, err := policy.ToolSchemaHash(def, alg)
	if err != nil {
		return ""
	}
	c.hashes[key] = h
	return h
}

// schemaHash is the observed hash for a tool whose rule pins one.
func (r *relay) schemaHash(st *policyState, name string) string {
	alg := st.engine.SchemaHashAlg(name)
	if alg == "" {
		return ""
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tools.hash(name, alg)
}

// checkAdvertised blocks a call whose raw name is not exactly a tool the
// server advertised, or whose normalized name is shared by two advertised
// tools. These checks guard the integrity of the decision and are enforced
// in monitor mode too. Before the server's first tools/list the raw name is
// forwarded as decided on its normalized form (see docs/decisions.md).
func (r *relay) checkAdvertised(name string, dec policy.Decision) policy.Decision {
	r.mu.Lock()
	seen := r.tools.seen
	_, advertised := r.tools.byRaw[name]
	ambiguous := r.tools.ambiguous(name)
	r.mu.Unlock()

	var reason string
	switch {
	case seen && !advertised:
		reason = "Tool not advertised by server"
	case seen && ambiguous:
		reason = "Ambiguous tool name"
	default:
		return dec
	}
	dec.Action = policy.Block
	dec.Code = aip.CodeForbidden
	dec.Reason = reason
	dec.ViolationType = aip.ViolationToolNotAllowed
	dec.Monitored = false
	return dec
}

// filterToolsList records the advertised tools and removes those the client
// must not see: tools the policy always blocks (unless ShowBlockedTools) and
// tools whose normalized names collide.
func (r *relay) filterToolsList(st *policyState, result json.RawMessage) (json.RawMessage, bool, error) {
	members, err := rawObject(result)
	if err != nil {
		return nil, false, err
	}
	rawTools, ok := members["tools"]
	if !ok {
		return result, false, nil
	}
	var tools []json.RawMessage
	if err := json.Unmarshal(rawTools, &tools); err != nil {
		return nil, false, fmt.Errorf("proxy: tools/list tools: %w", err)
	}
	names := make([]string, len(tools))
	r.mu.Lock()
	for i, t := range tools {
		var def struct {
			Name *string `json:"name"`
		}
		if err := json.Unmarshal(t, &def); err != nil || def.Name == nil {
			r.mu.Unlock()
			return nil, false, fmt.Errorf("proxy: tools/list entry %d has no name", i)
		}
		names[i] = *def.Name
		r.tools.add(*def.Name, t)
	}
	r.mu.Unlock()

	kept := tools[:0:0]
	for i, t := range tools {
		name := names[i]
		r.mu.Lock()
		ambiguous := r.tools.ambiguous(name)
		r.mu.Unlock()
		if ambiguous {
			r.cfg.Log.Warn("server advertises tools whose normalized names collide; hidden and blocked", "tool", name)
			continue
		}
		if !r.cfg.ShowBlockedTools && !st.engine.ToolVisible(name, r.schemaHash(st, name)) {
			continue
		}
		kept = append(kept, t)
	}
	if len(kept) == len(tools) {
		return result, false, nil
	}
	var b bytes.Buffer
	b.WriteByte('[')
	for i, t := range kept {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(t)
	}
	b.WriteByte(']')
	members["tools"] = b.Bytes()
	out, err := encodeRawObject(members)
	return out, true, err
}
