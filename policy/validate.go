package policy

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"regexp/syntax"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/agentid/agentid/aip"
)

// Warning is a finding that does not stop the policy from loading.
type Warning struct {
	Field   string
	Message string
}

func (w Warning) String() string {
	if w.Field == "" {
		return w.Message
	}
	return w.Field + ": " + w.Message
}

// FieldError is one validation failure, located by a field path such as
// "spec.tool_rules[2].allow_args.url". Field is empty for document-level
// problems (YAML syntax, size).
type FieldError struct {
	Field   string
	Message string
}

func (e FieldError) Error() string {
	if e.Field == "" {
		return "policy: " + e.Message
	}
	return "policy: " + e.Field + ": " + e.Message
}

// LoadError reports every validation failure of a document, sorted by field
// path, so that an author can fix them all in one pass.
type LoadError struct {
	Errors []FieldError
}

func (e *LoadError) Error() string {
	switch len(e.Errors) {
	case 0:
		return "policy: invalid policy"
	case 1:
		return e.Errors[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "policy: %d errors:", len(e.Errors))
	for _, fe := range e.Errors {
		b.WriteString("\n\t")
		b.WriteString(strings.TrimPrefix(fe.Error(), "policy: "))
	}
	return b.String()
}

// Unwrap exposes each FieldError to errors.As.
func (e *LoadError) Unwrap() []error {
	out := make([]error, len(e.Errors))
	for i, fe := range e.Errors {
		out[i] = fe
	}
	return out
}

// Limits on regular expressions. RE2 guarantees linear-time matching, but
// compile time and memory still grow with pattern size and count.
const (
	MaxPatternLength = 4096
	MaxPatterns      = 1024
)

// Values accepted by the identity and server sections.
var (
	signingAlgorithms = []string{"ES256", "ES384", "EdDSA", "RS256", "HS256"}
	endpointPath      = regexp.MustCompile(`^/[A-Za-z0-9._~/-]*$`)
)

type policyValidator struct {
	errs     []FieldError
	warns    []Warning
	patterns int
}

func (v *policyValidator) errorf(field, format string, args ...any) {
	v.errs = append(v.errs, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

func (v *policyValidator) warnf(field, format string, args ...any) {
	v.warns = append(v.warns, Warning{Field: field, Message: fmt.Sprintf(format, args...)})
}

// validate runs the semantic checks the schema cannot express. It never
// stops at the first problem.
func validatePolicy(p *Policy) ([]FieldError, []Warning) {
	v := &policyValidator{}
	v.metadata(p)
	v.spec(p)
	v.identity(p)
	v.server(p)
	if v.patterns > MaxPatterns {
		v.errorf("spec", "%d regular expressions; at most %d are allowed", v.patterns, MaxPatterns)
	}
	return v.errs, v.warns
}

func (v *policyValidator) metadata(p *Policy) {
	switch p.APIVersion {
	case APIVersionV1Alpha1, APIVersionV1Alpha2:
	default:
		v.errorf("apiVersion", "must be %q or %q, got %s", APIVersionV1Alpha2, APIVersionV1Alpha1, shortValue(p.APIVersion))
	}
	if p.Kind != KindAgentPolicy {
		v.errorf("kind", "must be %q, got %s", KindAgentPolicy, shortValue(p.Kind))
	}
	switch name := p.Metadata.Name; {
	case strings.TrimSpace(name) == "":
		v.errorf("metadata.name", "must not be empty")
	case hasControlChar(name):
		v.errorf("metadata.name", "must not contain control characters")
	}
}

func (v *policyValidator) spec(p *Policy) {
	s := &p.Spec
	switch s.Mode {
	case "", aip.ModeEnforce:
	case aip.ModeMonitor:
		v.warnf("spec.mode", "monitor mode: violations are logged but not blocked")
	default:
		v.errorf("spec.mode", "must be %q or %q, got %s", aip.ModeEnforce, aip.ModeMonitor, shortValue(s.Mode))
	}
	v.names("spec.allowed_tools", s.AllowedTools)
	v.names("spec.allowed_methods", s.AllowedMethods)
	v.names("spec.denied_methods", s.DeniedMethods)
	for i, pp := range s.ProtectedPaths {
		if strings.TrimSpace(pp) == "" {
			v.errorf(indexField("spec.protected_paths", i), "must not be empty")
		}
	}

	seen := map[string]int{}
	for i, r := range s.ToolRules {
		v.toolRule(indexField("spec.tool_rules", i), r, s.StrictArgsDefault)
		n := NormalizeName(r.Tool)
		if n == "" {
			continue
		}
		if j, dup := seen[n]; dup {
			// The reference let the later rule silently replace the earlier
			// one; with two rules an author cannot tell which one applies.
			v.errorf(indexField("spec.tool_rules", i)+".tool", "duplicate rule for tool %q (also spec.tool_rules[%d]; names are compared after normalization)", n, j)
			continue
		}
		seen[n] = i
	}
	if s.DLP != nil {
		v.dlp(s.DLP)
	}
}

// names checks a list of tool or method names: each must survive
// normalization, or it could never match anything.
func (v *policyValidator) names(field string, names []string) {
	for i, n := range names {
		if NormalizeName(n) == "" {
			v.errorf(indexField(field, i), "must not be empty after normalization")
		}
	}
}

func (v *policyValidator) toolRule(field string, r ToolRule, strictDefault *bool) {
	if NormalizeName(r.Tool) == "" {
		v.errorf(field+".tool", "must not be empty after normalization")
	}
	switch r.Action {
	case "", ActionAllow, ActionAsk:
	case ActionBlock:
		if len(r.AllowArgs) > 0 {
			v.warnf(field+".allow_args", "has no effect: the rule blocks the tool unconditionally")
		}
	default:
		v.errorf(field+".action", "must be one of \"allow\", \"block\", \"ask\", got %s", shortValue(r.Action))
	}
	if r.RateLimit != "" {
		if _, err := ParseRateLimit(r.RateLimit); err != nil {
			v.errorf(field+".rate_limit", "%v", err)
		}
	}
	if r.SchemaHash != "" && !validSchemaHash(r.SchemaHash) {
		v.errorf(field+".schema_hash", "must be sha256:<64 hex digits>, sha384:<96 hex digits> or sha512:<128 hex digits>, in lowercase")
	}
	strict := strictDefault != nil && *strictDefault
	if r.StrictArgs != nil {
		strict = *r.StrictArgs
	}
	if strict && len(r.AllowArgs) == 0 && r.Action != ActionBlock {
		v.warnf(field, "strict_args with no allow_args: every call with arguments is rejected")
	}
	for _, arg := range sortedArgNames(r.AllowArgs) {
		af := joinField(field+".allow_args", arg)
		if arg == "" {
			v.errorf(af, "argument name must not be empty")
		}
		re := r.AllowArgs[arg]
		if v.regex(af, re) {
			if !anchoredStart(re) || !anchoredEnd(re) {
				v.warnf(af, "regex %s is not anchored (^...$); it matches anywhere in the value", shortValue(re))
			}
		}
	}
}

func validSchemaHash(s string) bool {
	alg, hexDigits, ok := strings.Cut(s, ":")
	if !ok {
		return false
	}
	want := map[string]int{"sha256": 64, "sha384": 96, "sha512": 128}[alg]
	if want == 0 || len(hexDigits) != want {
		return false
	}
	for i := 0; i < len(hexDigits); i++ {
		c := hexDigits[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// regex checks that pattern compiles with Go's RE2 engine, the only engine
// with the linear-time guarantee the spec requires (§3.5.3, §10.2). It
// reports whether the pattern is usable.
func (v *policyValidator) regex(field, pattern string) bool {
	v.patterns++
	if pattern == "" {
		v.errorf(field, "regex must not be empty")
		return false
	}
	if len(pattern) > MaxPatternLength {
		v.errorf(field, "regex is %d bytes long; at most %d are allowed", len(pattern), MaxPatternLength)
		return false
	}
	if _, err := regexp.Compile(pattern); err != nil {
		msg := err.Error()
		if se, ok := err.(*syntax.Error); ok {
			switch {
			case (se.Code == syntax.ErrInvalidPerlOp || se.Code == syntax.ErrInvalidNamedCapture) && hasAnyPrefix(se.Expr, "(?=", "(?!", "(?<=", "(?<!"):
				msg += " (lookahead and lookbehind assertions are not supported: regexes use RE2 syntax, which guarantees linear-time matching)"
			case se.Code == syntax.ErrInvalidEscape && len(se.Expr) == 2 && se.Expr[1] >= '1' && se.Expr[1] <= '9':
				msg += " (backreferences are not supported: regexes use RE2 syntax, which guarantees linear-time matching)"
			}
		}
		v.errorf(field, "invalid regex: %s", msg)
		return false
	}
	return true
}

func hasAnyPrefix(s string, prefixes ...string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// anchoredStart and anchoredEnd tell whether a regex can only match at the
// start (end) of the value. Matching is partial (decision 3), so a pattern
// like "^(ls|cat)" also accepts "ls; rm -rf /". A trailing ".*" counts as
// anchored: it states the author's intent to accept any suffix.
func anchoredStart(pattern string) bool {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return false
	}
	return isAnchored(re, true)
}

func anchoredEnd(pattern string) bool {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return false
	}
	return isAnchored(re, false)
}

func isAnchored(re *syntax.Regexp, start bool) bool {
	switch re.Op {
	case syntax.OpBeginText:
		return start
	case syntax.OpEndText:
		return !start
	case syntax.OpStar:
		// ".*" or "(?s).*" at the end.
		return !start && len(re.Sub) == 1 && (re.Sub[0].Op == syntax.OpAnyChar || re.Sub[0].Op == syntax.OpAnyCharNotNL)
	case syntax.OpCapture:
		return isAnchored(re.Sub[0], start)
	case syntax.OpConcat:
		if len(re.Sub) == 0 {
			return false
		}
		if start {
			return isAnchored(re.Sub[0], start)
		}
		return isAnchored(re.Sub[len(re.Sub)-1], start)
	case syntax.OpAlternate:
		for _, sub := range re.Sub {
			if !isAnchored(sub, start) {
				return false
			}
		}
		return len(re.Sub) > 0
	}
	return false
}

func (v *policyValidator) dlp(d *DLP) {
	const f = "spec.dlp"
	if len(d.Patterns) == 0 {
		v.errorf(f+".patterns", "must not be empty when dlp is present")
	}
	if d.MaxScanSize != "" {
		if _, err := ParseSize(d.MaxScanSize); err != nil {
			v.errorf(f+".max_scan_size", "%v", err)
		}
	}
	switch d.OnRequestMatch {
	case "", OnMatchBlock, OnMatchRedact, OnMatchWarn:
	default:
		v.errorf(f+".on_request_match", "must be one of \"block\", \"redact\", \"warn\", got %s", shortValue(d.OnRequestMatch))
	}
	switch d.OnRedactionFailure {
	case "", OnFailureBlock, OnFailureReject:
	case OnFailureAllowOriginal:
		v.warnf(f+".on_redaction_failure", "allow_original forwards unredacted data when redaction fails; use it only for debugging")
	default:
		v.errorf(f+".on_redaction_failure", "must be one of \"block\", \"allow_original\", \"reject\", got %s", shortValue(d.OnRedactionFailure))
	}
	if d.LogOriginalOnFailure != nil && *d.LogOriginalOnFailure {
		v.warnf(f+".log_original_on_failure", "writes the data DLP tried to redact to the log")
	}
	names := map[string]int{}
	for i, pt := range d.Patterns {
		pf := indexField(f+".patterns", i)
		switch {
		case strings.TrimSpace(pt.Name) == "":
			v.errorf(pf+".name", "must not be empty")
		case strings.ContainsAny(pt.Name, "]"):
			// The name is written into "[REDACTED:<name>]"; a "]" would end
			// the marker early and make redacted output ambiguous.
			v.errorf(pf+".name", "must not contain \"]\"")
		case hasControlChar(pt.Name):
			v.errorf(pf+".name", "must not contain newlines or control characters")
		default:
			if j, dup := names[pt.Name]; dup {
				v.errorf(pf+".name", "duplicate pattern name %q (also spec.dlp.patterns[%d])", pt.Name, j)
			} else {
				names[pt.Name] = i
			}
		}
		v.regex(pf+".regex", pt.Regex)
		switch pt.Scope {
		case "", ScopeAll, ScopeRequest, ScopeResponse:
		default:
			v.errorf(pf+".scope", "must be one of \"request\", \"response\", \"all\", got %s", shortValue(pt.Scope))
		}
		if pt.Scope == ScopeRequest && !d.ScansRequests() && d.IsEnabled() {
			v.warnf(pf+".scope", "request-scoped pattern is never used: scan_requests is false")
		}
		if pt.Scope == ScopeResponse && !d.ScansResponses() && d.IsEnabled() {
			v.warnf(pf+".scope", "response-scoped pattern is never used: scan_responses is false")
		}
	}
}

func hasControlChar(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool {
		return unicode.IsControl(r) || r == '\u2028' || r == '\u2029'
	}) >= 0
}

// duration parses an optional duration field, recording an error.
func (v *policyValidator) duration(field, s string) (time.Duration, bool) {
	if s == "" {
		return 0, false
	}
	d, err := ParseDuration(s)
	if err != nil {
		v.errorf(field, "%v; use a Go duration such as \"90s\" or \"5m\", or whole days such as \"7d\"", err)
		return 0, false
	}
	return d, true
}

func (v *policyValidator) identity(p *Policy) {
	id := p.Spec.Identity
	if id == nil {
		return
	}
	const f = "spec.identity"
	ttl := DefaultTokenTTL
	ttlOK := true
	if id.TokenTTL != "" {
		ttl, ttlOK = v.duration(f+".token_ttl", id.TokenTTL)
		if ttlOK && ttl <= 0 {
			v.errorf(f+".token_ttl", "must be greater than 0")
			ttlOK = false
		}
		if ttlOK && ttl > time.Hour {
			v.warnf(f+".token_ttl", "%s is longer than 1h; short TTLs (5m-15m) limit the damage of a stolen token", id.TokenTTL)
		}
	}
	if rot, ok := v.duration(f+".rotation_interval", id.RotationInterval); ok && ttlOK && rot > 0 {
		// Only an explicit interval can be wrong: an unset one defaults to
		// min(4m, 0.8*ttl) (decision 10), so `token_ttl: 1s` alone loads.
		if rot >= ttl {
			v.errorf(f+".rotation_interval", "rotation_interval (%s) must be less than token_ttl (%s)", id.RotationInterval, ttlString(id))
		} else if float64(rot) > 0.9*float64(ttl) {
			v.warnf(f+".rotation_interval", "rotation_interval (%s) is very close to token_ttl (%s); consider reducing it", id.RotationInterval, ttlString(id))
		}
	}
	if nw, ok := v.duration(f+".nonce_window", id.NonceWindow); ok && ttlOK && nw < ttl {
		v.errorf(f+".nonce_window", "nonce_window (%s) must be at least token_ttl (%s): a nonce forgotten while its token is still valid can be replayed", id.NonceWindow, ttlString(id))
	}
	if g, ok := v.duration(f+".policy_transition_grace", id.PolicyTransitionGrace); ok && ttlOK && g >= ttl {
		v.warnf(f+".policy_transition_grace", "policy_transition_grace (%s) should be less than token_ttl (%s) so that policy changes take effect within one token lifetime", id.PolicyTransitionGrace, ttlString(id))
	}
	switch id.SessionBinding {
	case "", BindingProcess, BindingPolicy, BindingStrict:
	default:
		v.errorf(f+".session_binding", "must be one of \"process\", \"policy\", \"strict\", got %s", shortValue(id.SessionBinding))
	}
	if id.Audience != "" {
		v.audience(f+".audience", id.Audience, p.Metadata.Name)
	}
	enabled := id.Enabled != nil && *id.Enabled
	if id.RequireToken != nil && *id.RequireToken && !enabled {
		v.errorf(f+".require_token", "require_token is true but identity is not enabled: no token could ever be issued")
	}
	if ns := id.NonceStorage; ns != nil {
		nf := f + ".nonce_storage"
		switch ns.Type {
		case "", "memory":
			if ns.Address != "" {
				v.warnf(nf+".address", "is ignored for memory storage")
			}
		case "redis", "postgres":
			if strings.TrimSpace(ns.Address) == "" {
				v.errorf(nf+".address", "is required when type is %q", ns.Type)
			}
		default:
			v.errorf(nf+".type", "must be one of \"memory\", \"redis\", \"postgres\", got %s", shortValue(ns.Type))
		}
		v.duration(nf+".clock_skew_tolerance", ns.ClockSkewTolerance)
	}
	if k := id.Keys; k != nil {
		kf := f + ".keys"
		if k.SigningAlgorithm != "" && !slices.Contains(signingAlgorithms, k.SigningAlgorithm) {
			v.errorf(kf+".signing_algorithm", "must be one of %s, got %s", quoteList(signingAlgorithms), shortValue(k.SigningAlgorithm))
		}
		if k.SigningAlgorithm == "HS256" && p.Spec.Server != nil && p.Spec.Server.Enabled != nil && *p.Spec.Server.Enabled {
			// §5.8.2: a shared secret cannot be published in a JWKS, and any
			// verifier holding it could mint tokens.
			v.errorf(kf+".signing_algorithm", "HS256 must not be used when server.enabled is true (spec §5.8.2)")
		}
		switch k.KeySource {
		case "", "generate":
		case "file":
			if strings.TrimSpace(k.KeyPath) == "" {
				v.errorf(kf+".key_path", "is required when key_source is \"file\"")
			}
		case "external":
			v.errorf(kf+".key_source", "\"external\" is not supported")
		default:
			v.errorf(kf+".key_source", "must be one of \"generate\", \"file\", \"external\", got %s", shortValue(k.KeySource))
		}
		if rp, ok := v.duration(kf+".rotation_period", k.RotationPeriod); ok && rp <= 0 {
			v.errorf(kf+".rotation_period", "must be greater than 0")
		}
		v.duration(kf+".grace_period", k.GracePeriod)
		if k.JWKSEndpoint != "" {
			if !endpointPath.MatchString(k.JWKSEndpoint) {
				v.errorf(kf+".jwks_endpoint", "must be a path starting with \"/\" (letters, digits, \"-._~/\")")
			}
			if s := p.Spec.Server; s != nil && s.Endpoints != nil && s.Endpoints.JWKS != "" && s.Endpoints.JWKS != k.JWKSEndpoint {
				v.errorf(kf+".jwks_endpoint", "%q differs from spec.server.endpoints.jwks %q; set only one", k.JWKSEndpoint, s.Endpoints.JWKS)
			}
		}
	}
	if enabled && p.Spec.Server != nil && p.Spec.Server.Enabled != nil && *p.Spec.Server.Enabled &&
		(id.NonceStorage == nil || id.NonceStorage.Type == "" || id.NonceStorage.Type == "memory") {
		v.warnf(f+".nonce_storage", "memory nonce storage is not shared between server instances; with more than one instance a token can be replayed against another (use type redis or postgres, or agentid serve --store)")
	}
}

func ttlString(id *Identity) string {
	if id.TokenTTL == "" {
		return "5m" // DefaultTokenTTL, written as the spec writes it
	}
	return id.TokenTTL
}

// audience checks §3.7.8: a valid URI or the policy name, never empty, never
// a wildcard.
func (v *policyValidator) audience(field, aud, name string) {
	switch {
	case strings.TrimSpace(aud) == "":
		v.errorf(field, "must not be empty (omit it to default to metadata.name)")
	case strings.Contains(aud, "*"):
		v.errorf(field, "must not contain wildcards")
	case aud == name:
	case strings.IndexFunc(aud, unicode.IsSpace) >= 0 || hasControlChar(aud):
		v.errorf(field, "must be an absolute URI or equal metadata.name")
	default:
		u, err := url.Parse(aud)
		if err != nil || u.Scheme == "" || (u.Opaque == "" && u.Host == "" && u.Path == "") {
			v.errorf(field, "must be an absolute URI or equal metadata.name, got %s", shortValue(aud))
		}
	}
}

func (v *policyValidator) server(p *Policy) {
	s := p.Spec.Server
	if s == nil {
		return
	}
	const f = "spec.server"
	tlsOn := s.TLS != nil && s.TLS.Cert != "" && s.TLS.Key != ""
	if s.Listen != "" {
		if err := checkListen(s.Listen); err != nil {
			v.errorf(f+".listen", "%v", err)
		} else if !IsLoopbackAddr(s.Listen) && !tlsOn {
			v.errorf(f+".tls", "tls.cert and tls.key are required when listen (%s) is not a loopback address (127.0.0.0/8 or ::1)", s.Listen)
		}
	}
	if t := s.TLS; t != nil {
		if (t.Cert == "") != (t.Key == "") {
			v.errorf(f+".tls", "cert and key must be set together")
		}
		if t.RequireClientCert != nil && *t.RequireClientCert && t.ClientCA == "" {
			v.errorf(f+".tls.client_ca", "is required when require_client_cert is true")
		}
		if t.ClientCA != "" && !tlsOn {
			v.errorf(f+".tls.client_ca", "client certificates need TLS: set tls.cert and tls.key")
		}
	}
	switch s.FailoverMode {
	case "", "fail_closed", "local_policy":
		if s.FailOpenConstraints != nil {
			v.warnf(f+".fail_open_constraints", "is ignored unless failover_mode is \"fail_open\"")
		}
	case "fail_open":
		if s.FailOpenConstraints == nil {
			v.warnf(f+".failover_mode", "fail_open without fail_open_constraints allows every request while validation is unavailable")
		}
	default:
		v.errorf(f+".failover_mode", "must be one of \"fail_closed\", \"fail_open\", \"local_policy\", got %s", shortValue(s.FailoverMode))
	}
	if t, ok := v.duration(f+".timeout", s.Timeout); ok && t <= 0 {
		v.errorf(f+".timeout", "must be greater than 0")
	}
	if c := s.FailOpenConstraints; c != nil {
		cf := f + ".fail_open_constraints"
		v.names(cf+".allowed_tools", c.AllowedTools)
		v.duration(cf+".max_duration", c.MaxDuration)
		if c.MaxRequests != nil && *c.MaxRequests <= 0 {
			v.errorf(cf+".max_requests", "must be greater than 0")
		}
		if c.AlertWebhook != "" {
			u, err := url.Parse(c.AlertWebhook)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				v.errorf(cf+".alert_webhook", "must be an absolute http(s) URL")
			}
		}
	}
	v.endpoints(p)
}

// endpoints checks that every path is a plain absolute path (http.ServeMux
// would read "{x}" or "GET /x" as pattern syntax) and that no two endpoints,
// defaults included, share a path.
func (v *policyValidator) endpoints(p *Policy) {
	const f = "spec.server.endpoints"
	e := p.Spec.Server.Endpoints
	if e == nil {
		e = &Endpoints{}
	}
	jwks := e.JWKS
	jwksField := f + ".jwks"
	if jwks == "" && p.Spec.Identity != nil && p.Spec.Identity.Keys != nil && p.Spec.Identity.Keys.JWKSEndpoint != "" {
		jwks, jwksField = p.Spec.Identity.Keys.JWKSEndpoint, "spec.identity.keys.jwks_endpoint"
	}
	list := []struct{ field, set, def string }{
		{f + ".validate", e.Validate, DefaultValidatePath},
		{f + ".revoke", e.Revoke, DefaultRevokePath},
		{jwksField, jwks, DefaultJWKSPath},
		{f + ".health", e.Health, DefaultHealthPath},
		{f + ".metrics", e.Metrics, DefaultMetricsPath},
	}
	used := map[string]string{}
	for _, ep := range list {
		path := ep.set
		if path == "" {
			path = ep.def
		} else if !endpointPath.MatchString(path) {
			if ep.field == jwksField && jwksField != f+".jwks" {
				continue // reported by the identity checks
			}
			v.errorf(ep.field, "must be a path starting with \"/\" (letters, digits, \"-._~/\")")
			continue
		}
		if other, dup := used[path]; dup {
			v.errorf(ep.field, "path %q is also used by %s", path, other)
			continue
		}
		used[path] = ep.field
	}
}

// checkListen validates a "<host>:<port>" or ":<port>" listen address.
func checkListen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("must be <host>:<port> or :<port>, got %s", shortValue(addr))
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 || port[0] == '+' || port[0] == '-' {
		return fmt.Errorf("port must be a number from 0 to 65535, got %s", shortValue(port))
	}
	if host == "" {
		return nil
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return fmt.Errorf("host must be an IP address or a DNS name, got %s", shortValue(host))
		}
	}
	return nil
}

// IsLoopbackAddr reports whether a listen address binds only a loopback IP
// (127.0.0.0/8 or ::1). The name "localhost" does not count: it is resolved
// at bind time and may not be loopback. An empty host binds every
// interface.
func IsLoopbackAddr(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil || host == "" {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

func quoteList(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

func sortedArgNames(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// mergeErrors combines schema and semantic errors. A semantic error on a
// field the schema already rejected (or inside it) is dropped: it would only
// restate the same problem.
func mergeErrors(schemaErrs, semErrs []FieldError) []FieldError {
	out := append([]FieldError(nil), schemaErrs...)
	for _, se := range semErrs {
		covered := false
		for _, sc := range schemaErrs {
			if sc.Field == "" || fieldWithin(se.Field, sc.Field) || fieldWithin(sc.Field, se.Field) {
				covered = true
				break
			}
		}
		if !covered {
			out = append(out, se)
		}
	}
	out = dedupeFieldErrors(out)
	sort.Slice(out, func(i, j int) bool {
		return lessFieldMessage(out[i].Field, out[i].Message, out[j].Field, out[j].Message)
	})
	return out
}

// fieldWithin reports whether field is parent or lies below it.
func fieldWithin(field, parent string) bool {
	if field == parent {
		return true
	}
	if !strings.HasPrefix(field, parent) {
		return false
	}
	c := field[len(parent)]
	return c == '.' || c == '['
}

func dedupeFieldErrors(errs []FieldError) []FieldError {
	seen := map[FieldError]bool{}
	out := errs[:0:0]
	for _, e := range errs {
		if !seen[e] {
			seen[e] = true
			out = append(out, e)
		}
	}
	return out
}

func sortWarnings(ws []Warning) {
	sort.Slice(ws, func(i, j int) bool { return lessFieldMessage(ws[i].Field, ws[i].Message, ws[j].Field, ws[j].Message) })
}

// lessFieldMessage is a total order on (field, message) pairs, so that the
// order of errors and warnings is a function of the document alone and not
// of the order in which map iteration (here or in the schema library) found
// them: lessField first, then fields that lessField ranks equal ("[\"0\"]"
// and "[\"00\"]") byte-wise, then messages.
func lessFieldMessage(fa, ma, fb, mb string) bool {
	if lessField(fa, fb) {
		return true
	}
	if lessField(fb, fa) {
		return false
	}
	if fa != fb {
		return fa < fb
	}
	return ma < mb
}

// lessField orders field paths as a reader expects: numeric indexes by
// value, so tool_rules[2] comes before tool_rules[10].
func lessField(a, b string) bool {
	for a != "" && b != "" {
		da, db := leadingDigits(a), leadingDigits(b)
		if da > 0 && db > 0 {
			na, _ := strconv.ParseUint(a[:da], 10, 64)
			nb, _ := strconv.ParseUint(b[:db], 10, 64)
			if na != nb {
				return na < nb
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func leadingDigits(s string) int {
	n := 0
	for n < len(s) && n < 18 && '0' <= s[n] && s[n] <= '9' {
		n++
	}
	return n
}
