package policy

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/agentid/agentid/aip"
)

// Reasons. They say which check failed and nothing about the policy's
// contents (no patterns, no paths), because they are sent to the agent.
const (
	engineReasonNotAllowed     = "Tool not in allowed_tools list" // conformance err-050
	engineReasonRuleBlock      = "Tool blocked by policy"
	engineReasonArgFailed      = "Argument validation failed"
	engineReasonArgMissing     = "Required argument missing"
	engineReasonArgsInvalid    = "Invalid arguments"
	engineReasonStrictArgs     = "Undeclared argument"
	engineReasonRateLimited    = "Rate limit exceeded"
	engineReasonProtectedPath  = "Access denied: protected path"
	engineReasonMethod         = "Method not allowed"
	engineReasonSchemaUnknown  = "Tool schema unknown"
	engineReasonSchemaMismatch = "Tool schema mismatch"
)

// engineDefaultMethods is the AIP §3.4.3 default allowed_methods list, plus
// notifications/cancelled and notifications/roots/list_changed. The spec
// lists a bare "cancelled", which no MCP peer sends; without the MCP names a
// default policy would block every cancellation and roots change (a
// documented deviation, reference digest §6 #20).
var engineDefaultMethods = []string{
	"initialize",
	"initialized",
	"ping",
	"tools/call",
	"tools/list",
	"completion/complete",
	"notifications/initialized",
	"notifications/progress",
	"notifications/message",
	"notifications/resources/updated",
	"notifications/resources/list_changed",
	"notifications/tools/list_changed",
	"notifications/prompts/list_changed",
	"cancelled",
	"notifications/cancelled",
	"notifications/roots/list_changed",
}

// engineDefaultMethods2026 is the default for clients of MCP 2026-07-28,
// which has no initialize, initialized or ping (the protocol is stateless)
// and adds server/discover, subscriptions/listen and tasks/get|cancel; the
// rest of the spec's list stays. A policy's own allowed_methods applies to
// every era.
var engineDefaultMethods2026 = []string{
	"server/discover",
	"subscriptions/listen",
	"tasks/get",
	"tasks/cancel",
	"tools/call",
	"tools/list",
	"completion/complete",
	"notifications/progress",
	"notifications/message",
	"notifications/resources/updated",
	"notifications/resources/list_changed",
	"notifications/tools/list_changed",
	"notifications/prompts/list_changed",
	"cancelled",
	"notifications/cancelled",
	"notifications/roots/list_changed",
}

// Era2026 is the first MCP protocol version of the stateless era.
const Era2026 = "2026-07-28"

const engineToolsCall = "tools/call"

// EngineOptions configures NewEngine.
type EngineOptions struct {
	// ExtraProtectedPaths are protected in addition to spec.protected_paths,
	// e.g. the audit log. The policy's own Path is always protected.
	ExtraProtectedPaths []string
	// HomeDir expands "~" in protected paths and in argument values.
	// Default: os.UserHomeDir(), resolved once in NewEngine.
	HomeDir string
	// WorkDir is the base for relative paths in protected_paths and in
	// argument values: the directory the MCP server resolves them against.
	// Default: os.Getwd(), resolved once in NewEngine.
	WorkDir string
	// Paths resolves symlinks in path-like arguments (HostPaths for a proxy
	// beside its server). nil checks protected paths lexically only, so the
	// engine never touches a file system.
	Paths PathResolver
}

// Engine is the compiled decision function of one policy (AIP §4). It
// touches no file system except through EngineOptions.Paths, never reads
// the clock, and is safe for concurrent use.
type Engine struct {
	policy   *Policy
	monitor  bool
	allowAll bool
	allowed  map[string]struct{}
	// written holds the tool names exactly as the policy spells them.
	written map[string]struct{}
	// allowed2026 is the default list for 2026-07-28 clients; nil when the
	// policy names its allowed_methods (one list for every era).
	allowed2026   map[string]struct{}
	denied        map[string]struct{}
	allowlist     map[string]struct{}
	rules         map[string]*engineRule
	strictDefault bool
	protected     protectedSet
}

type engineRule struct {
	label      string // "tool_rules[i]", reported in Decision.FailedRule
	action     string
	strict     *bool
	args       []engineArg // sorted by name
	rateLimit  *RateLimit
	schemaAlg  string
	schemaHash string // "<alg>:<lowercase hex>"
}

type engineArg struct {
	name    string
	pattern string
	re      argPattern
}

// NewEngine compiles p: it normalizes every name, compiles every pattern and
// rate limit and resolves the protected paths once, so that deciding does no
// parsing. A nil policy yields an engine that blocks every tool call (AIP
// conformance auth-050, fail closed) while still allowing the default
// methods, so a client can connect and see why its calls fail.
//
// NewEngine rejects what it cannot enforce (an unknown mode or action, an
// invalid regex, rate limit or schema hash, two rules for one normalized
// tool, a name that normalizes to nothing) even though policy validation
// should have caught it: the engine must never silently drop a rule.
func NewEngine(p *Policy, opts EngineOptions) (*Engine, error) {
	e := &Engine{policy: p}
	spec := Spec{}
	if p != nil {
		spec = p.Spec
	}
	switch spec.Mode {
	case "", aip.ModeEnforce:
	case aip.ModeMonitor:
		e.monitor = true
	default:
		return nil, fmt.Errorf("policy: spec.mode: unknown mode %q", spec.Mode)
	}

	var err error
	if e.allowlist, err = engineNameSet(spec.AllowedTools, "spec.allowed_tools"); err != nil {
		return nil, err
	}
	e.written = make(map[string]struct{}, len(spec.AllowedTools)+len(spec.ToolRules))
	for _, n := range spec.AllowedTools {
		e.written[n] = struct{}{}
	}
	for _, tr := range spec.ToolRules {
		e.written[tr.Tool] = struct{}{}
	}
	if spec.AllowedMethods == nil {
		e.allowed, _ = engineNameSet(engineDefaultMethods, "")
		e.allowed2026, _ = engineNameSet(engineDefaultMethods2026, "")
	} else if e.allowed, err = engineNameSet(spec.AllowedMethods, "spec.allowed_methods"); err != nil {
		return nil, err
	}
	_, e.allowAll = e.allowed["*"]
	if e.denied, err = engineNameSet(spec.DeniedMethods, "spec.denied_methods"); err != nil {
		return nil, err
	}
	if spec.StrictArgsDefault != nil {
		e.strictDefault = *spec.StrictArgsDefault
	}

	e.rules = make(map[string]*engineRule, len(spec.ToolRules))
	for i, tr := range spec.ToolRules {
		field := "spec.tool_rules[" + strconv.Itoa(i) + "]"
		name := NormalizeName(tr.Tool)
		if name == "" {
			return nil, fmt.Errorf("policy: %s.tool: name is empty after normalization", field)
		}
		if _, dup := e.rules[name]; dup {
			return nil, fmt.Errorf("policy: %s.tool: another rule already applies to %q", field, name)
		}
		r, err := engineCompileRule(tr, field)
		if err != nil {
			return nil, err
		}
		r.label = "tool_rules[" + strconv.Itoa(i) + "]"
		e.rules[name] = r
		// allowlist = allowed_tools ∪ {tools whose rule allows} (AIP v1alpha1
		// §5.2; conformance auth-020). Rules that block or ask are decided in
		// step 3 and never reach the allowlist.
		if r.action == ActionAllow {
			e.allowlist[name] = struct{}{}
		}
	}

	home, workDir, err := engineDirs(opts)
	if err != nil {
		return nil, err
	}
	paths := slices.Clone(spec.ProtectedPaths)
	if p != nil && p.Path != "" {
		paths = append(paths, p.Path)
	}
	paths = append(paths, opts.ExtraProtectedPaths...)
	if e.protected, err = protectedCompile(paths, home, workDir, opts.Paths); err != nil {
		return nil, fmt.Errorf("policy: spec.protected_paths: %v", err)
	}
	return e, nil
}

func engineNameSet(names []string, field string) (map[string]struct{}, error) {
	set := make(map[string]struct{}, len(names))
	for i, n := range names {
		norm := NormalizeName(n)
		if norm == "" {
			return nil, fmt.Errorf("policy: %s[%d]: name is empty after normalization", field, i)
		}
		set[norm] = struct{}{}
	}
	return set, nil
}

func engineCompileRule(tr ToolRule, field string) (*engineRule, error) {
	r := &engineRule{action: tr.Action, strict: tr.StrictArgs}
	switch r.action {
	case "":
		r.action = ActionAllow
	case ActionAllow, ActionBlock, ActionAsk:
	default:
		return nil, fmt.Errorf("policy: %s.action: unknown action %q", field, tr.Action)
	}
	if tr.RateLimit != "" {
		rl, err := ParseRateLimit(tr.RateLimit)
		if err != nil {
			return nil, fmt.Errorf("policy: %s.rate_limit: %v", field, err)
		}
		r.rateLimit = &rl
	}
	if tr.SchemaHash != "" {
		alg, norm, err := schemaHashParse(tr.SchemaHash)
		if err != nil {
			return nil, fmt.Errorf("policy: %s.schema_hash: %v", field, err)
		}
		r.schemaAlg, r.schemaHash = alg, norm
	}
	for name, pattern := range tr.AllowArgs {
		// Go's regexp is RE2: linear time whatever the pattern, so there is no
		// need for the reference's nested-quantifier heuristic, which rejects
		// harmless patterns such as ^(ab)+?$.
		re, err := compileArgPattern(pattern)
		if err != nil {
			return nil, fmt.Errorf("policy: %s.allow_args[%q]: invalid RE2 pattern: %v", field, name, err)
		}
		r.args = append(r.args, engineArg{name: name, pattern: pattern, re: re})
	}
	slices.SortFunc(r.args, func(a, b engineArg) int { return strings.Compare(a.name, b.name) })
	return r, nil
}

func engineDirs(opts EngineOptions) (home, workDir string, err error) {
	workDir = opts.WorkDir
	if workDir == "" {
		if workDir, err = os.Getwd(); err != nil {
			return "", "", fmt.Errorf("policy: working directory: %v", err)
		}
	}
	if workDir, err = filepath.Abs(workDir); err != nil {
		return "", "", fmt.Errorf("policy: working directory: %v", err)
	}
	home = opts.HomeDir
	if home == "" {
		// An unknown home only matters if something uses "~"; that is
		// reported where it happens.
		home, _ = os.UserHomeDir()
	}
	if home != "" {
		if !filepath.IsAbs(home) {
			home = filepath.Join(workDir, home)
		}
		home = filepath.Clean(home)
	}
	return home, workDir, nil
}

// Policy returns the policy the engine was built from (nil for the
// block-everything engine).
func (e *Engine) Policy() *Policy { return e.policy }

// DecideMethod applies method-level authorization (AIP §4.2) to the method of
// a request or notification: denied_methods first, then "*", then
// allowed_methods (or the default list when unset). In monitor mode a denial
// is let through and marked Monitored (DESIGN decision 4).
func (e *Engine) DecideMethod(method string) Decision { return e.DecideMethodIn(method, "") }

// NamesTool reports whether the policy spells a tool name exactly as raw
// (in allowed_tools or a rule), not merely one that normalizes alike.
func (e *Engine) NamesTool(raw string) bool {
	_, ok := e.written[raw]
	return ok
}

// EraAware reports whether the methods allowed depend on the client's
// protocol version: when the policy leaves allowed_methods to the default.
func (e *Engine) EraAware() bool { return e.allowed2026 != nil }

// DecideMethodIn is DecideMethod for a client speaking protocol version era
// ("" when unknown): under the default list, a 2026-07-28 client is allowed
// that era's methods (see engineDefaultMethods2026).
func (e *Engine) DecideMethodIn(method, era string) Decision {
	m := NormalizeName(method)
	d := Decision{Method: m}
	allowed := e.allowed
	if e.allowed2026 != nil && era >= Era2026 {
		allowed = e.allowed2026
	}
	if _, ok := e.denied[m]; ok {
		d.FailedRule = "denied_methods"
	} else if e.allowAll {
		return d
	} else if _, ok := allowed[m]; ok {
		return d
	} else {
		d.FailedRule = "allowed_methods"
	}
	d.Code, d.ViolationType, d.Reason = aip.CodeMethodNotAllowed, aip.ViolationMethodNotAllowed, engineReasonMethod
	return e.relaxable(d)
}

// DecideServerMethod applies denied_methods to a request or notification
// the server sends the client (sampling/createMessage, elicitation/create,
// roots/list, notifications/message, ...). allowed_methods names what the
// client may call and does not apply: a policy that denies sampling must
// deny it, but one that lists the client's methods must not silently cut
// the server's requests off. Monitor mode lets a denial through, marked.
func (e *Engine) DecideServerMethod(method string) Decision {
	m := NormalizeName(method)
	d := Decision{Method: m}
	if _, ok := e.denied[m]; !ok {
		return d
	}
	d.FailedRule = "denied_methods"
	d.Code, d.ViolationType, d.Reason = aip.CodeMethodNotAllowed, aip.ViolationMethodNotAllowed, engineReasonMethod
	return e.relaxable(d)
}

// ToolCall is one tools/call to decide.
type ToolCall struct {
	// Name is the raw tool name as sent.
	Name string
	// Arguments is the raw JSON object of the call's arguments; nil means
	// no arguments.
	Arguments json.RawMessage
	// Validated says Arguments come from a strict decoder (package jsonrpc)
	// that validated them: they are not scanned a second time. Arguments
	// from anywhere else are validated first.
	Validated bool
	// SchemaHash is the observed hash ("sha256:<hex>") of the tool's
	// definition from the server's tools/list, "" when unknown. Only
	// consulted for rules with schema_hash.
	SchemaHash string
}

// CheckHostPaths is step 2 of DecideTool alone: whether the call's
// arguments name a protected path, resolved on this host. A proxy whose
// calls a validation server decides runs it too: only the agent's host can
// expand "~" and follow its symlinks (the server checks lexically, against
// its own home). It allows (Action Allow) when no path is protected.
func (e *Engine) CheckHostPaths(call ToolCall) Decision {
	d := Decision{Method: engineToolsCall, Tool: NormalizeName(call.Name)}
	var buf [8]argMember
	e.argsAndPaths(call, &d, buf[:0])
	return d
}

// argsAndPaths splits the call's arguments into dst and applies step 2
// (protected paths). It returns the members, and blocked true when it
// decided d: arguments that are not an object, or a protected path.
func (e *Engine) argsAndPaths(call ToolCall, d *Decision, dst []argMember) (args []argMember, blocked bool) {
	args, err := argParseObjectValidated(call.Arguments, dst, call.Validated)
	if err != nil {
		d.Action, d.Code, d.ViolationType, d.Reason = Block, aip.CodeForbidden, aip.ViolationArgumentValidation, engineReasonArgsInvalid
		return nil, true
	}
	if arg, idx, hit := e.protected.checkArgs(args); hit {
		d.Action, d.Code, d.ViolationType, d.Reason = Block, aip.CodeProtectedPath, aip.ViolationProtectedPath, engineReasonProtectedPath
		d.FailedArg, d.FailedRule = arg, e.protected.rule(idx)
		return nil, true
	}
	return args, false
}

// DecideTool applies tool-level authorization (AIP §4.3) to a tools/call, in
// the spec's defence-in-depth order:
//
//  1. rate limit (-32002): counted by the caller before DecideTool, against
//     a shared store (see RateLimit);
//  2. protected paths in any string of the arguments (-32007);
//  3. the tool's rule: block (-32001); then its schema pin, if any (unknown
//     schema -32001, mismatch -32013); then ask, which yields Ask when the
//     rule's allow_args validate and a block otherwise (as in §4.3, an ask
//     rule skips steps 4–6: the human sees every argument);
//  4. the allowlist, allowed_tools ∪ {rules with action allow} (-32001,
//     "Tool not in allowed_tools list");
//  5. allow_args: every constrained argument present, and its STRING()
//     partially matching the RE2 pattern (anchors are the author's job);
//  6. strict args (the rule's strict_args, else strict_args_default): no
//     argument outside allow_args, also when the rule has no allow_args or
//     the tool has no rule at all.
//
// In monitor mode (DESIGN decision 4) the -32001 outcomes of steps 3–6 are
// let through as Allow with Monitored set, keeping Code, ViolationType and
// Reason for the audit log (ALLOW_MONITOR). Rate limits, protected paths and
// schema mismatches are enforced in both modes, as are arguments that are not
// a JSON object (their paths could not be checked). Ask is Ask in both modes.
//
// For argument_validation, FailedArg names the argument and FailedRule holds
// the failing pattern itself, for the HTTP server's "Value does not match
// pattern" message; Reason never contains it. Arguments are examined in
// sorted key order, so the reported argument is deterministic.
func (e *Engine) DecideTool(call ToolCall) Decision {
	name := NormalizeName(call.Name)
	d := Decision{Method: engineToolsCall, Tool: name}
	rule := e.rules[name]

	// Step 2.
	var buf [8]argMember
	args, blocked := e.argsAndPaths(call, &d, buf[:0])
	if blocked {
		return d
	}

	// Step 3.
	if rule != nil {
		if rule.action == ActionBlock {
			d.Code, d.ViolationType, d.Reason, d.FailedRule = aip.CodeForbidden, aip.ViolationRuleBlock, engineReasonRuleBlock, rule.label
			return e.relaxable(d)
		}
		if rule.schemaHash != "" {
			if call.SchemaHash == "" {
				d.Code, d.ViolationType, d.Reason, d.FailedRule = aip.CodeForbidden, aip.ViolationSchemaMismatch, engineReasonSchemaUnknown, rule.label
				return e.relaxable(d)
			}
			if !strings.EqualFold(strings.TrimSpace(call.SchemaHash), rule.schemaHash) {
				d.Action, d.Code, d.ViolationType, d.Reason, d.FailedRule = Block, aip.CodeSchemaMismatch, aip.ViolationSchemaMismatch, engineReasonSchemaMismatch, rule.label
				return d
			}
		}
		if rule.action == ActionAsk {
			if !e.validateArgs(rule, args, &d) {
				return e.relaxable(d)
			}
			d.Action = Ask
			return d
		}
	}

	// Step 4.
	if _, ok := e.allowlist[name]; !ok {
		d.Code, d.ViolationType, d.Reason = aip.CodeForbidden, aip.ViolationToolNotAllowed, engineReasonNotAllowed
		return e.relaxable(d)
	}

	// Step 5.
	if rule != nil && !e.validateArgs(rule, args, &d) {
		return e.relaxable(d)
	}

	// Step 6.
	strict := e.strictDefault
	if rule != nil && rule.strict != nil {
		strict = *rule.strict
	}
	if strict {
		for _, m := range args {
			if rule == nil || !rule.declares(m.key) {
				d.Code, d.ViolationType, d.Reason, d.FailedArg, d.FailedRule = aip.CodeForbidden, aip.ViolationStrictArgs, engineReasonStrictArgs, m.key, "strict_args"
				return e.relaxable(d)
			}
		}
	}
	return d
}

// validateArgs is VALIDATE_ARGUMENTS of AIP §4.5. On failure it fills d.
func (e *Engine) validateArgs(r *engineRule, args []argMember, d *Decision) bool {
	for _, a := range r.args {
		val, ok := argLookup(args, a.name)
		if !ok {
			d.Code, d.ViolationType, d.Reason, d.FailedArg, d.FailedRule = aip.CodeForbidden, aip.ViolationArgumentValidation, engineReasonArgMissing, a.name, a.pattern
			return false
		}
		if !engineMatch(&a.re, val) {
			d.Code, d.ViolationType, d.Reason, d.FailedArg, d.FailedRule = aip.CodeForbidden, aip.ViolationArgumentValidation, engineReasonArgFailed, a.name, a.pattern
			return false
		}
	}
	return true
}

// engineMatch matches STRING(val) against re, on the request bytes when the
// value is a string with nothing to decode.
func engineMatch(re *argPattern, val []byte) bool {
	if b, ok := argPlainString(val); ok {
		return re.match(b)
	}
	s, err := argStringify(val)
	if err != nil {
		return false // a value that cannot be canonicalized cannot match
	}
	return re.matchString(s)
}

func (r *engineRule) declares(key string) bool {
	_, ok := slices.BinarySearchFunc(r.args, key, func(a engineArg, k string) int { return strings.Compare(a.name, k) })
	return ok
}

// relaxable finishes a decision whose violation monitor mode may let through.
func (e *Engine) relaxable(d Decision) Decision {
	if e.monitor {
		d.Action, d.Monitored = Allow, true
	} else {
		d.Action = Block
	}
	return d
}

// ToolVisible reports whether a tool the server advertises in tools/list
// should be shown to the client: false for tools the policy would block on
// every call, so that an agent is not offered tools it cannot use and a
// poisoned definition (pinned schema, different hash) never reaches the
// model. schemaHash is the tool's observed hash, "" when not computed.
//
// In monitor mode only schema mismatches hide a tool, since every other
// block would be let through.
func (e *Engine) ToolVisible(name string, schemaHash string) bool {
	n := NormalizeName(name)
	rule := e.rules[n]
	if rule != nil && rule.schemaHash != "" && schemaHash != "" && !strings.EqualFold(strings.TrimSpace(schemaHash), rule.schemaHash) {
		return false
	}
	if e.monitor {
		return true
	}
	if rule != nil {
		switch {
		case rule.action == ActionBlock:
			return false
		case rule.schemaHash != "" && schemaHash == "":
			return false
		case rule.action == ActionAsk:
			return true
		}
	}
	_, ok := e.allowlist[n]
	return ok
}

// RateLimit returns the rate limit of tool's rule and the rule's label (for
// Decision.FailedRule), ok false when the tool has none. Counting is the
// caller's: the state lives in a store.RateLimiter shared by every
// process enforcing the policy, and the limit is step 1 of AIP §4.3, spent
// before DecideTool runs (otherwise an agent could probe rules and paths
// for free).
func (e *Engine) RateLimit(tool string) (limit RateLimit, rule string, ok bool) {
	if r := e.rules[NormalizeName(tool)]; r != nil && r.rateLimit != nil {
		return *r.rateLimit, r.label, true
	}
	return RateLimit{}, "", false
}

// RateLimited is the decision for a call over its tool's rate limit
// (-32002), enforced in monitor mode too.
func (e *Engine) RateLimited(tool, rule string) Decision {
	return Decision{Action: Block, Code: aip.CodeRateLimited, ViolationType: aip.ViolationRateLimited,
		Reason: engineReasonRateLimited, FailedRule: rule, Method: engineToolsCall, Tool: NormalizeName(tool)}
}

// SchemaHashAlg returns the algorithm of the schema_hash pinned by tool's
// rule ("sha256", "sha384" or "sha512"), or "" when the tool has no pin, so
// the proxy knows which hash to compute from tools/list.
func (e *Engine) SchemaHashAlg(tool string) string {
	if r := e.rules[NormalizeName(tool)]; r != nil {
		return r.schemaAlg
	}
	return ""
}
