package policy

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/agentid/agentid/aip"
)

// ruleCase is one validation requirement: the spec body, and either the
// error it must produce or (when errField is empty) that it loads, with an
// optional expected warning. noWarnField asserts the absence of a warning.
type ruleCase struct {
	name        string
	body        string
	errField    string
	errMsg      string
	warnField   string
	warnMsg     string
	noWarnField string
}

func runRuleCases(t *testing.T, tests []ruleCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, warns, err := Parse([]byte(specDoc(tt.body)))
			if tt.errField != "" {
				if err == nil {
					t.Fatalf("Parse accepted the policy; warnings: %v", warns)
				}
				if !hasFieldError(fieldErrors(t, err), tt.errField, tt.errMsg) {
					t.Fatalf("want error at %q containing %q, got %v", tt.errField, tt.errMsg, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if p == nil {
				t.Fatal("nil policy without error")
			}
			if tt.warnField != "" && !hasWarning(warns, tt.warnField, tt.warnMsg) {
				t.Fatalf("want warning at %q containing %q, got %v", tt.warnField, tt.warnMsg, warns)
			}
			if tt.noWarnField != "" {
				for _, w := range warns {
					if w.Field == tt.noWarnField {
						t.Fatalf("unexpected warning %v", w)
					}
				}
			}
		})
	}
}

func TestValidateSpecRules(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{name: "an empty spec loads", body: ""},
		{name: "enforce mode loads without warnings", body: "mode: enforce", noWarnField: "spec.mode"},
		{name: "monitor mode loads with a warning", body: "mode: monitor", warnField: "spec.mode", warnMsg: "violations are logged but not blocked"},
		{name: "an unknown mode is rejected", body: "mode: audit", errField: "spec.mode", errMsg: `must be one of "enforce", "monitor"`},
		{name: "an empty allowed tool is rejected", body: `allowed_tools: [""]`, errField: "spec.allowed_tools[0]", errMsg: "must not be empty"},
		{name: "an allowed tool that normalizes to nothing is rejected", body: `allowed_tools: ["\u200b "]`, errField: "spec.allowed_tools[0]", errMsg: "empty after normalization"},
		{name: "an empty denied method is rejected", body: `denied_methods: [""]`, errField: "spec.denied_methods[0]", errMsg: "must not be empty"},
		{name: "an empty protected path is rejected", body: `protected_paths: [""]`, errField: "spec.protected_paths[0]", errMsg: "must not be empty"},
		{name: "a blank protected path is rejected", body: `protected_paths: ["  "]`, errField: "spec.protected_paths[0]", errMsg: "must not be empty"},
	})
}

func TestValidateToolRules(t *testing.T) {
	long := strings.Repeat("a", MaxPatternLength+1)
	runRuleCases(t, []ruleCase{
		{name: "a rule needs a tool", body: "tool_rules:\n  - action: block", errField: "spec.tool_rules[0].tool", errMsg: "required field is missing"},
		{name: "a rule's tool must not be empty", body: "tool_rules:\n  - tool: ''", errField: "spec.tool_rules[0].tool", errMsg: "must not be empty"},
		{name: "a rule's tool must survive normalization", body: "tool_rules:\n  - tool: \"\\u200b\"", errField: "spec.tool_rules[0].tool", errMsg: "empty after normalization"},
		{name: "allow, block and ask are the actions", body: "tool_rules:\n  - tool: a\n    action: allow\n  - tool: b\n    action: block\n  - tool: c\n    action: ask"},
		{name: "an unknown action is rejected", body: "tool_rules:\n  - tool: a\n    action: deny", errField: "spec.tool_rules[0].action", errMsg: `must be one of "allow", "block", "ask"`},
		{name: "duplicate rules for one tool are rejected", body: "tool_rules:\n  - tool: read_file\n  - tool: write_file\n  - tool: read_file\n    action: block", errField: "spec.tool_rules[2].tool", errMsg: "duplicate rule for tool \"read_file\" (also spec.tool_rules[0]"},
		{name: "rules that normalize to the same tool are duplicates", body: "tool_rules:\n  - tool: read_file\n  - tool: \"ＲＥＡＤ_FILE\"", errField: "spec.tool_rules[1].tool", errMsg: "duplicate rule"},
		{name: "an anchored allow_args regex loads without warnings", body: "tool_rules:\n  - tool: a\n    allow_args:\n      path: '^/workspace/[a-z]+$'", noWarnField: "spec.tool_rules[0].allow_args.path"},
		{name: "a trailing .* counts as anchored", body: "tool_rules:\n  - tool: a\n    allow_args:\n      url: '^https://github\\.com/.*'", noWarnField: "spec.tool_rules[0].allow_args.url"},
		{name: "flags and alternations of anchored branches count as anchored", body: "tool_rules:\n  - tool: a\n    allow_args:\n      m: '(?i)^(GET|HEAD)$'\n      alt: '^a$|^b$'", noWarnField: "spec.tool_rules[0].allow_args.m"},
		{name: "an allow_args regex without ^ warns", body: "tool_rules:\n  - tool: a\n    allow_args:\n      path: '/workspace/.*'", warnField: "spec.tool_rules[0].allow_args.path", warnMsg: "not anchored"},
		{name: "an allow_args regex without $ warns", body: "tool_rules:\n  - tool: a\n    allow_args:\n      cmd: '^(ls|cat)'", warnField: "spec.tool_rules[0].allow_args.cmd", warnMsg: "not anchored"},
		{name: "an allow_args regex must compile", body: "tool_rules:\n  - tool: a\n    allow_args:\n      q: '(a'", errField: "spec.tool_rules[0].allow_args.q", errMsg: "invalid regex: error parsing regexp: missing closing )"},
		{name: "lookahead is rejected with an RE2 explanation", body: "tool_rules:\n  - tool: a\n    allow_args:\n      path: '^(?!/etc).*$'", errField: "spec.tool_rules[0].allow_args.path", errMsg: "`(?!` (lookahead and lookbehind assertions are not supported"},
		{name: "lookbehind is rejected with an RE2 explanation", body: "tool_rules:\n  - tool: a\n    allow_args:\n      path: '^.*(?<!\\.pem)$'", errField: "spec.tool_rules[0].allow_args.path", errMsg: "lookbehind assertions are not supported"},
		{name: "backreferences are rejected with an RE2 explanation", body: "tool_rules:\n  - tool: a\n    allow_args:\n      x: '^(a)\\1$'", errField: "spec.tool_rules[0].allow_args.x", errMsg: "backreferences are not supported"},
		{name: "an empty allow_args regex is rejected", body: "tool_rules:\n  - tool: a\n    allow_args:\n      x: ''", errField: "spec.tool_rules[0].allow_args.x", errMsg: "must not be empty"},
		{name: "an overlong regex is rejected", body: "tool_rules:\n  - tool: a\n    allow_args:\n      x: '" + long + "'", errField: "spec.tool_rules[0].allow_args.x", errMsg: fmt.Sprintf("at most %d", MaxPatternLength)},
		{name: "an argument name with dots is quoted in the field path", body: "tool_rules:\n  - tool: a\n    allow_args:\n      a.b: '('", errField: `spec.tool_rules[0].allow_args["a.b"]`, errMsg: "invalid regex"},
		{name: "a YAML 1.1 boolean argument name is rejected, not turned into \"false\"", body: "tool_rules:\n  - tool: a\n    allow_args:\n      n: '^a$'", errField: "spec.tool_rules[0].allow_args", errMsg: "YAML 1.1 reads y, n, yes, no, on and off as booleans"},
		{name: "an empty argument name is rejected", body: "tool_rules:\n  - tool: a\n    allow_args:\n      '': '^a$'", errField: `spec.tool_rules[0].allow_args[""]`, errMsg: "argument name must not be empty"},
		{name: "allow_args values must be strings", body: "tool_rules:\n  - tool: a\n    allow_args:\n      num: 5", errField: "spec.tool_rules[0].allow_args.num", errMsg: "must be a string, got number"},
		{name: "allow_args on a block rule warns", body: "tool_rules:\n  - tool: a\n    action: block\n    allow_args:\n      x: '^a$'", warnField: "spec.tool_rules[0].allow_args", warnMsg: "no effect"},
		{name: "strict_args without allow_args warns", body: "tool_rules:\n  - tool: a\n    strict_args: true", warnField: "spec.tool_rules[0]", warnMsg: "every call with arguments is rejected"},
		{name: "a valid rate limit loads", body: "tool_rules:\n  - tool: a\n    rate_limit: 10/minute\n  - tool: b\n    rate_limit: 5/s\n  - tool: c\n    rate_limit: 100/hour"},
		{name: "an unparsable rate limit is rejected", body: "tool_rules:\n  - tool: a\n    rate_limit: 10/day", errField: "spec.tool_rules[0].rate_limit", errMsg: "period must be second, minute or hour"},
		{name: "a zero rate limit is rejected", body: "tool_rules:\n  - tool: a\n    rate_limit: 0/minute", errField: "spec.tool_rules[0].rate_limit", errMsg: "positive integer"},
		{name: "sha256, sha384 and sha512 schema hashes load", body: "tool_rules:\n  - tool: a\n    schema_hash: sha256:" + strings.Repeat("0", 64) + "\n  - tool: b\n    schema_hash: sha384:" + strings.Repeat("a", 96) + "\n  - tool: c\n    schema_hash: sha512:" + strings.Repeat("f", 128)},
		{name: "a schema hash of the wrong length for its algorithm is rejected", body: "tool_rules:\n  - tool: a\n    schema_hash: sha384:" + strings.Repeat("0", 64), errField: "spec.tool_rules[0].schema_hash", errMsg: "sha384:<96 hex digits>"},
		{name: "an uppercase schema hash is rejected", body: "tool_rules:\n  - tool: a\n    schema_hash: sha256:" + strings.Repeat("A", 64), errField: "spec.tool_rules[0].schema_hash", errMsg: "lowercase"},
		{name: "an unknown schema hash algorithm is rejected", body: "tool_rules:\n  - tool: a\n    schema_hash: md5:" + strings.Repeat("0", 32), errField: "spec.tool_rules[0].schema_hash", errMsg: "sha256"},
	})
}

func TestValidateTotalPatternCap(t *testing.T) {
	var b strings.Builder
	b.WriteString("tool_rules:\n")
	for i := 0; i <= MaxPatterns; i++ {
		fmt.Fprintf(&b, "  - tool: t%d\n    allow_args:\n      x: '^a$'\n", i)
	}
	_, _, err := Parse([]byte(specDoc(b.String())))
	if err == nil || !hasFieldError(fieldErrors(t, err), "spec", fmt.Sprintf("at most %d are allowed", MaxPatterns)) {
		t.Fatalf("want pattern cap error, got %v", err)
	}
}

func TestValidateDLP(t *testing.T) {
	pat := "dlp:\n  patterns:\n    - name: AWS Key\n      regex: 'AKIA[0-9A-Z]{16}'\n"
	runRuleCases(t, []ruleCase{
		{name: "a DLP block with one pattern loads", body: pat},
		{name: "all v1alpha2 DLP fields load", body: "dlp:\n  enabled: true\n  scan_requests: true\n  scan_responses: true\n  detect_encoding: true\n  filter_stderr: false\n  max_scan_size: 512KB\n  on_request_match: redact\n  on_redaction_failure: reject\n  log_original_on_failure: false\n  patterns:\n    - name: k\n      regex: 'sk-[a-zA-Z0-9]{32}'\n      scope: request"},
		{name: "DLP patterns are required", body: "dlp:\n  enabled: true", errField: "spec.dlp.patterns", errMsg: "required field is missing"},
		{name: "a DLP pattern needs a name", body: "dlp:\n  patterns:\n    - regex: 'a'", errField: "spec.dlp.patterns[0].name", errMsg: "required field is missing"},
		{name: "a DLP pattern needs a regex", body: "dlp:\n  patterns:\n    - name: a", errField: "spec.dlp.patterns[0].regex", errMsg: "required field is missing"},
		{name: "a blank DLP name is rejected", body: "dlp:\n  patterns:\n    - name: ' '\n      regex: a", errField: "spec.dlp.patterns[0].name", errMsg: "must not be empty"},
		{name: "DLP names are unique", body: pat + "    - name: AWS Key\n      regex: 'ASIA[0-9A-Z]{16}'", errField: "spec.dlp.patterns[1].name", errMsg: "duplicate pattern name"},
		{name: "a DLP name must not contain ]", body: "dlp:\n  patterns:\n    - name: 'a]b'\n      regex: a", errField: "spec.dlp.patterns[0].name", errMsg: `must not contain "]"`},
		{name: "a DLP name must not contain a newline", body: "dlp:\n  patterns:\n    - name: \"a\\nb\"\n      regex: a", errField: "spec.dlp.patterns[0].name", errMsg: "newlines"},
		{name: "a DLP regex must compile", body: "dlp:\n  patterns:\n    - name: a\n      regex: '[a-'", errField: "spec.dlp.patterns[0].regex", errMsg: "invalid regex"},
		{name: "a DLP regex must be RE2", body: "dlp:\n  patterns:\n    - name: a\n      regex: 'password(?=:)'", errField: "spec.dlp.patterns[0].regex", errMsg: "lookahead"},
		{name: "an unknown DLP scope is rejected", body: "dlp:\n  patterns:\n    - name: a\n      regex: a\n      scope: both", errField: "spec.dlp.patterns[0].scope", errMsg: `must be one of "request", "response", "all"`},
		{name: "an unknown on_request_match is rejected", body: "dlp:\n  on_request_match: drop\n  patterns:\n    - name: a\n      regex: a", errField: "spec.dlp.on_request_match", errMsg: `"block", "redact", "warn"`},
		{name: "an unknown on_redaction_failure is rejected", body: "dlp:\n  on_redaction_failure: ignore\n  patterns:\n    - name: a\n      regex: a", errField: "spec.dlp.on_redaction_failure", errMsg: `"block", "allow_original", "reject"`},
		{name: "allow_original warns", body: "dlp:\n  on_redaction_failure: allow_original\n  patterns:\n    - name: a\n      regex: a", warnField: "spec.dlp.on_redaction_failure", warnMsg: "unredacted"},
		{name: "an unparsable max_scan_size is rejected", body: "dlp:\n  max_scan_size: lots\n  patterns:\n    - name: a\n      regex: a", errField: "spec.dlp.max_scan_size", errMsg: "invalid size"},
		{name: "a request-scoped pattern without scan_requests warns", body: "dlp:\n  patterns:\n    - name: a\n      regex: a\n      scope: request", warnField: "spec.dlp.patterns[0].scope", warnMsg: "never used"},
	})
}

func TestValidateIdentity(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{name: "a complete identity block loads", body: "identity:\n  enabled: true\n  token_ttl: 10m\n  rotation_interval: 8m\n  require_token: true\n  session_binding: strict\n  nonce_window: 20m\n  policy_transition_grace: 2m\n  audience: https://mcp.example.com/api\n  nonce_storage:\n    type: redis\n    address: redis://127.0.0.1:6379\n    key_prefix: 'prod:aip:nonce:'\n    clock_skew_tolerance: 30s\n  keys:\n    signing_algorithm: EdDSA\n    key_source: file\n    key_path: /etc/aip/key.pem\n    rotation_period: 7d\n    grace_period: 1h\n    jwks_endpoint: /v1/jwks"},
		{name: "durations must parse", body: "identity:\n  token_ttl: 5 minutes", errField: "spec.identity.token_ttl", errMsg: `invalid duration "5 minutes"`},
		{name: "negative durations are rejected", body: "identity:\n  nonce_window: -5m", errField: "spec.identity.nonce_window", errMsg: "negative duration"},
		{name: "a zero token_ttl is rejected", body: "identity:\n  token_ttl: 0s", errField: "spec.identity.token_ttl", errMsg: "greater than 0"},
		{name: "a rotation_interval at or above token_ttl is rejected", body: "identity:\n  enabled: true\n  token_ttl: 5m\n  rotation_interval: 6m", errField: "spec.identity.rotation_interval", errMsg: "rotation_interval (6m) must be less than token_ttl (5m)"},
		{name: "a rotation_interval equal to token_ttl is rejected", body: "identity:\n  token_ttl: 5m\n  rotation_interval: 300s", errField: "spec.identity.rotation_interval", errMsg: "must be less than token_ttl"},
		{name: "an explicit rotation_interval is checked against the default ttl", body: "identity:\n  rotation_interval: 5m", errField: "spec.identity.rotation_interval", errMsg: "rotation_interval (5m) must be less than token_ttl (5m)"},
		{name: "a rotation_interval above 90% of token_ttl warns", body: "identity:\n  token_ttl: 5m\n  rotation_interval: 4m45s", warnField: "spec.identity.rotation_interval", warnMsg: "very close to token_ttl"},
		{name: "a short token_ttl with the default rotation loads", body: "identity:\n  enabled: true\n  token_ttl: 1s"},
		{name: "rotation_interval 0s disables rotation", body: "identity:\n  token_ttl: 5m\n  rotation_interval: 0s"},
		{name: "a nonce_window below token_ttl is rejected", body: "identity:\n  token_ttl: 5m\n  nonce_window: 1m", errField: "spec.identity.nonce_window", errMsg: "must be at least token_ttl"},
		{name: "a policy_transition_grace at token_ttl warns", body: "identity:\n  token_ttl: 5m\n  policy_transition_grace: 5m", warnField: "spec.identity.policy_transition_grace", warnMsg: "should be less than token_ttl"},
		{name: "a token_ttl over an hour warns", body: "identity:\n  token_ttl: 2h", warnField: "spec.identity.token_ttl", warnMsg: "longer than 1h"},
		{name: "day durations parse", body: "identity:\n  token_ttl: 1d\n  rotation_interval: 20h", warnField: "spec.identity.token_ttl", warnMsg: "longer than 1h"},
		{name: "an audience equal to metadata.name loads", body: "identity:\n  audience: test"},
		{name: "a URN audience loads", body: "identity:\n  audience: 'urn:example:mcp'"},
		{name: "a SPIFFE audience loads", body: "identity:\n  audience: spiffe://example.org/mcp"},
		{name: "an empty audience is rejected", body: "identity:\n  audience: ''", errField: "spec.identity.audience", errMsg: "must not be empty"},
		{name: "a wildcard audience is rejected", body: "identity:\n  audience: 'https://*.example.com'", errField: "spec.identity.audience", errMsg: "wildcards"},
		{name: "a relative audience is rejected", body: "identity:\n  audience: some-other-name", errField: "spec.identity.audience", errMsg: "absolute URI or equal metadata.name"},
		{name: "an audience with spaces is rejected", body: "identity:\n  audience: 'https://a b'", errField: "spec.identity.audience", errMsg: "absolute URI"},
		{name: "an unknown session_binding is rejected", body: "identity:\n  session_binding: host", errField: "spec.identity.session_binding", errMsg: `"process", "policy", "strict"`},
		{name: "an unknown nonce storage type is rejected", body: "identity:\n  nonce_storage:\n    type: etcd", errField: "spec.identity.nonce_storage.type", errMsg: `"memory", "redis", "postgres"`},
		{name: "redis nonce storage needs an address", body: "identity:\n  nonce_storage:\n    type: redis", errField: "spec.identity.nonce_storage.address", errMsg: `required when type is "redis"`},
		{name: "postgres nonce storage needs an address", body: "identity:\n  nonce_storage:\n    type: postgres", errField: "spec.identity.nonce_storage.address", errMsg: "required"},
		{name: "memory nonce storage needs no address", body: "identity:\n  nonce_storage:\n    type: memory"},
		{name: "memory nonce storage gets no availability warning", body: "identity:\n  nonce_storage:\n    type: memory", noWarnField: "spec.identity.nonce_storage.type"},
		{name: "an unparsable clock_skew_tolerance is rejected", body: "identity:\n  nonce_storage:\n    clock_skew_tolerance: soon", errField: "spec.identity.nonce_storage.clock_skew_tolerance", errMsg: "invalid duration"},
		{name: "an unknown signing algorithm is rejected", body: "identity:\n  keys:\n    signing_algorithm: none", errField: "spec.identity.keys.signing_algorithm", errMsg: `"ES256", "ES384", "EdDSA", "RS256", "HS256"`},
		{name: "HS256 is allowed with the server off", body: "identity:\n  enabled: true\n  keys:\n    signing_algorithm: HS256"},
		{name: "HS256 with the server on is rejected", body: "identity:\n  keys:\n    signing_algorithm: HS256\nserver:\n  enabled: true", errField: "spec.identity.keys.signing_algorithm", errMsg: "HS256 must not be used when server.enabled"},
		{name: "an external key source is not supported", body: "identity:\n  keys:\n    key_source: external", errField: "spec.identity.keys.key_source", errMsg: "not supported"},
		{name: "a file key source needs key_path", body: "identity:\n  keys:\n    key_source: file", errField: "spec.identity.keys.key_path", errMsg: `required when key_source is "file"`},
		{name: "an unparsable rotation_period is rejected", body: "identity:\n  keys:\n    rotation_period: weekly", errField: "spec.identity.keys.rotation_period", errMsg: "invalid duration"},
		{name: "an unparsable key grace_period is rejected", body: "identity:\n  keys:\n    grace_period: 1 hour", errField: "spec.identity.keys.grace_period", errMsg: "invalid duration"},
		{name: "require_token without enabled is rejected", body: "identity:\n  require_token: true", errField: "spec.identity.require_token", errMsg: "identity is not enabled"},
		{name: "require_token with enabled false is rejected", body: "identity:\n  enabled: false\n  require_token: true", errField: "spec.identity.require_token", errMsg: "identity is not enabled"},
		{name: "differing JWKS paths are rejected", body: "identity:\n  keys:\n    jwks_endpoint: /keys\nserver:\n  endpoints:\n    jwks: /v1/jwks", errField: "spec.identity.keys.jwks_endpoint", errMsg: "differs from spec.server.endpoints.jwks"},
		{name: "equal JWKS paths load", body: "identity:\n  keys:\n    jwks_endpoint: /keys\nserver:\n  endpoints:\n    jwks: /keys"},
		{name: "a relative jwks_endpoint is rejected", body: "identity:\n  keys:\n    jwks_endpoint: keys", errField: "spec.identity.keys.jwks_endpoint", errMsg: `starting with "/"`},
		{name: "memory nonce storage with the server on warns", body: "identity:\n  enabled: true\nserver:\n  enabled: true", warnField: "spec.identity.nonce_storage", warnMsg: "replayed"},
		{name: "shared nonce storage with the server on gets no replay warning", body: "identity:\n  enabled: true\n  nonce_storage:\n    type: redis\n    address: redis://r:6379\nserver:\n  enabled: true", noWarnField: "spec.identity.nonce_storage"},
	})
}

func TestValidateServer(t *testing.T) {
	tls := "  tls:\n    cert: /c.pem\n    key: /k.pem\n"
	runRuleCases(t, []ruleCase{
		{name: "a loopback IPv4 listener needs no TLS", body: "server:\n  enabled: true\n  listen: 127.0.0.1:9443"},
		{name: "any 127/8 listener needs no TLS", body: "server:\n  enabled: true\n  listen: 127.0.0.2:9443"},
		{name: "an IPv6 loopback listener needs no TLS", body: "server:\n  enabled: true\n  listen: '[::1]:9443'"},
		{name: "the default listener needs no TLS", body: "server:\n  enabled: true"},
		{name: "a wildcard listener needs TLS", body: "server:\n  enabled: true\n  listen: 0.0.0.0:9443", errField: "spec.server.tls", errMsg: "tls.cert and tls.key are required"},
		{name: "an empty host means all interfaces and needs TLS", body: "server:\n  enabled: true\n  listen: ':9443'", errField: "spec.server.tls", errMsg: "not a loopback address"},
		{name: "the name localhost is not trusted as loopback", body: "server:\n  enabled: true\n  listen: localhost:9443", errField: "spec.server.tls", errMsg: "not a loopback address"},
		{name: "a non-loopback listener with TLS loads", body: "server:\n  enabled: true\n  listen: 0.0.0.0:9443\n" + tls},
		{name: "a listener with only a cert is rejected", body: "server:\n  listen: 0.0.0.0:9443\n  tls:\n    cert: /c.pem", errField: "spec.server.tls", errMsg: "cert and key must be set together"},
		{name: "a listen address needs a port", body: "server:\n  listen: 127.0.0.1", errField: "spec.server.listen", errMsg: "<host>:<port>"},
		{name: "a listen port must be in range", body: "server:\n  listen: 127.0.0.1:70000", errField: "spec.server.listen", errMsg: "0 to 65535"},
		{name: "a listen host must be an IP or DNS name", body: "server:\n  listen: '*:9443'", errField: "spec.server.listen", errMsg: "IP address or a DNS name"},
		{name: "require_client_cert needs client_ca", body: "server:\n  listen: 0.0.0.0:9443\n  tls:\n    cert: /c.pem\n    key: /k.pem\n    require_client_cert: true", errField: "spec.server.tls.client_ca", errMsg: "required when require_client_cert"},
		{name: "mTLS with client_ca loads", body: "server:\n  listen: 0.0.0.0:9443\n  tls:\n    cert: /c.pem\n    key: /k.pem\n    client_ca: /ca.pem\n    require_client_cert: true"},
		{name: "client_ca without a server certificate is rejected", body: "server:\n  tls:\n    client_ca: /ca.pem", errField: "spec.server.tls.client_ca", errMsg: "need TLS"},
		{name: "an unknown failover mode is rejected", body: "server:\n  failover_mode: retry", errField: "spec.server.failover_mode", errMsg: `"fail_closed", "fail_open", "local_policy"`},
		{name: "fail_open without constraints warns", body: "server:\n  failover_mode: fail_open", warnField: "spec.server.failover_mode", warnMsg: "without fail_open_constraints"},
		{name: "fail_open with constraints loads", body: "server:\n  failover_mode: fail_open\n  fail_open_constraints:\n    allowed_tools: [read_file]\n    max_duration: 5m\n    max_requests: 100\n    alert_webhook: https://alerts.example.com/aip\n    require_local_policy: true", noWarnField: "spec.server.failover_mode"},
		{name: "fail_open constraints without fail_open warn", body: "server:\n  fail_open_constraints:\n    max_requests: 1", warnField: "spec.server.fail_open_constraints", warnMsg: "ignored"},
		{name: "a zero max_requests is rejected", body: "server:\n  failover_mode: fail_open\n  fail_open_constraints:\n    max_requests: 0", errField: "spec.server.fail_open_constraints.max_requests", errMsg: "at least 1"},
		{name: "an invalid alert webhook is rejected", body: "server:\n  failover_mode: fail_open\n  fail_open_constraints:\n    alert_webhook: alerts", errField: "spec.server.fail_open_constraints.alert_webhook", errMsg: "http(s) URL"},
		{name: "an unparsable max_duration is rejected", body: "server:\n  failover_mode: fail_open\n  fail_open_constraints:\n    max_duration: forever", errField: "spec.server.fail_open_constraints.max_duration", errMsg: "invalid duration"},
		{name: "an unparsable timeout is rejected", body: "server:\n  timeout: 5x", errField: "spec.server.timeout", errMsg: "invalid duration"},
		{name: "a zero timeout is rejected", body: "server:\n  timeout: 0s", errField: "spec.server.timeout", errMsg: "greater than 0"},
		{name: "custom endpoints load", body: "server:\n  endpoints:\n    validate: /api/validate\n    revoke: /api/revoke\n    jwks: /.well-known/jwks.json\n    health: /healthz\n    metrics: /api/metrics"},
		{name: "an endpoint must start with a slash", body: "server:\n  endpoints:\n    health: healthz", errField: "spec.server.endpoints.health", errMsg: `starting with "/"`},
		{name: "an endpoint must not use ServeMux pattern syntax", body: "server:\n  endpoints:\n    validate: '/v1/{x}'", errField: "spec.server.endpoints.validate", errMsg: `starting with "/"`},
		{name: "endpoints must be distinct", body: "server:\n  endpoints:\n    validate: /x\n    revoke: /x", errField: "spec.server.endpoints.revoke", errMsg: "also used by spec.server.endpoints.validate"},
		{name: "an endpoint must not collide with a default", body: "server:\n  endpoints:\n    metrics: /health", errField: "spec.server.endpoints.metrics", errMsg: "also used by spec.server.endpoints.health"},
	})
}

func TestAccessorDefaults(t *testing.T) {
	p, _, err := Parse([]byte(specDoc("tool_rules:\n  - tool: a\ndlp:\n  patterns:\n    - name: k\n      regex: a")))
	if err != nil {
		t.Fatal(err)
	}
	if p.Mode() != aip.ModeEnforce || p.StrictArgsDefault() {
		t.Errorf("Mode() = %q, StrictArgsDefault() = %v", p.Mode(), p.StrictArgsDefault())
	}
	if a := p.Spec.ToolRules[0].EffectiveAction(); a != ActionAllow {
		t.Errorf("EffectiveAction() = %q", a)
	}
	d := p.Spec.DLP
	if !d.IsEnabled() || d.ScansRequests() || !d.ScansResponses() || d.MaxScanBytes() != 1<<20 ||
		d.RequestMatchAction() != OnMatchBlock || d.RedactionFailureAction() != OnFailureBlock ||
		d.Patterns[0].EffectiveScope() != ScopeAll {
		t.Errorf("DLP defaults wrong: enabled=%v req=%v resp=%v max=%d match=%q fail=%q scope=%q",
			d.IsEnabled(), d.ScansRequests(), d.ScansResponses(), d.MaxScanBytes(), d.RequestMatchAction(), d.RedactionFailureAction(), d.Patterns[0].EffectiveScope())
	}
	var none *DLP
	if none.IsEnabled() || none.ScansRequests() || none.ScansResponses() || none.MaxScanBytes() != 1<<20 {
		t.Error("a nil DLP must be disabled")
	}
	if p.Spec.DLP.Enabled != nil || p.Spec.Mode != "" {
		t.Error("accessors must not write defaults into the document")
	}

	id := p.IdentityConfig()
	want := IdentityConfig{
		TokenTTL:         5 * time.Minute,
		RotationInterval: 4 * time.Minute,
		SessionBinding:   BindingProcess,
		NonceWindow:      5 * time.Minute,
		Audience:         "test",
		NonceStorage:     NonceStorageConfig{Type: "memory", KeyPrefix: "aip:nonce:", ClockSkewTolerance: 30 * time.Second},
		Keys:             KeysConfig{SigningAlgorithm: "ES256", KeySource: "generate", RotationPeriod: 7 * 24 * time.Hour, JWKSEndpoint: "/v1/jwks"},
	}
	if id != want {
		t.Errorf("IdentityConfig() =\n %+v\nwant\n %+v", id, want)
	}

	sc := p.ServerConfig()
	if sc.Enabled || sc.Listen != "127.0.0.1:9443" || sc.FailoverMode != "fail_closed" || sc.Timeout != 5*time.Second ||
		sc.TLS.Enabled() || sc.FailOpen != nil || !sc.Loopback() ||
		sc.Endpoints != (EndpointPaths{"/v1/validate", "/v1/revoke", "/v1/jwks", "/health", "/metrics"}) {
		t.Errorf("ServerConfig() = %+v", sc)
	}
}

func TestAccessorsResolveConfiguredValues(t *testing.T) {
	p, _, err := Parse([]byte(specDoc(`mode: monitor
strict_args_default: true
tool_rules:
  - tool: a
    action: ask
dlp:
  enabled: true
  scan_requests: true
  scan_responses: false
  max_scan_size: 512KB
  on_request_match: warn
  on_redaction_failure: reject
  patterns:
    - name: k
      regex: a
      scope: request
identity:
  enabled: true
  require_token: true
  token_ttl: 10m
  nonce_window: 1h
  policy_transition_grace: 30s
  audience: https://mcp.example.com
  session_binding: policy
  nonce_storage:
    type: postgres
    address: postgres://db/aip
    key_prefix: n_
    clock_skew_tolerance: 1m
  keys:
    signing_algorithm: ES384
    rotation_period: 1d
    grace_period: 1h
server:
  enabled: true
  listen: 0.0.0.0:8443
  failover_mode: fail_open
  timeout: 2s
  tls:
    cert: /c
    key: /k
    client_ca: /ca
    require_client_cert: true
  fail_open_constraints:
    allowed_tools: [a]
    max_duration: 5m
    max_requests: 10
  endpoints:
    jwks: /jwks`)))
	if err != nil {
		t.Fatal(err)
	}
	if p.Mode() != aip.ModeMonitor || !p.StrictArgsDefault() || p.Spec.ToolRules[0].EffectiveAction() != ActionAsk {
		t.Error("spec accessors ignore configured values")
	}
	d := p.Spec.DLP
	if !d.ScansRequests() || d.ScansResponses() || d.MaxScanBytes() != 512<<10 || d.RequestMatchAction() != OnMatchWarn ||
		d.RedactionFailureAction() != OnFailureReject || d.Patterns[0].EffectiveScope() != ScopeRequest {
		t.Error("DLP accessors ignore configured values")
	}
	id := p.IdentityConfig()
	want := IdentityConfig{
		Enabled: true, RequireToken: true,
		TokenTTL: 10 * time.Minute, RotationInterval: 4 * time.Minute,
		SessionBinding: BindingPolicy, NonceWindow: time.Hour, PolicyTransitionGrace: 30 * time.Second,
		Audience:     "https://mcp.example.com",
		NonceStorage: NonceStorageConfig{Type: "postgres", Address: "postgres://db/aip", KeyPrefix: "n_", ClockSkewTolerance: time.Minute},
		Keys:         KeysConfig{SigningAlgorithm: "ES384", KeySource: "generate", RotationPeriod: 24 * time.Hour, GracePeriod: time.Hour, JWKSEndpoint: "/jwks"},
	}
	if id != want {
		t.Errorf("IdentityConfig() =\n %+v\nwant\n %+v", id, want)
	}
	sc := p.ServerConfig()
	if !sc.Enabled || sc.Listen != "0.0.0.0:8443" || sc.Loopback() || sc.FailoverMode != "fail_open" || sc.Timeout != 2*time.Second ||
		sc.TLS != (TLSConfig{Cert: "/c", Key: "/k", ClientCA: "/ca", RequireClientCert: true}) || !sc.TLS.Enabled() ||
		sc.FailOpen == nil || sc.FailOpen.MaxRequests != 10 || sc.FailOpen.MaxDuration != 5*time.Minute || sc.FailOpen.AllowedTools[0] != "a" ||
		sc.Endpoints.JWKS != "/jwks" {
		t.Errorf("ServerConfig() = %+v", sc)
	}
}

func TestRotationIntervalDefaultFollowsDecision10(t *testing.T) {
	tests := []struct {
		body string
		want time.Duration
	}{
		{"identity: {}", 4 * time.Minute},
		{"identity:\n  token_ttl: 1s", 800 * time.Millisecond},
		{"identity:\n  token_ttl: 1m", 48 * time.Second},
		{"identity:\n  token_ttl: 1h", 4 * time.Minute},
		{"identity:\n  token_ttl: 1h\n  rotation_interval: 50m", 50 * time.Minute},
		{"identity:\n  rotation_interval: 0s", 0},
	}
	for _, tt := range tests {
		p, _, err := Parse([]byte(specDoc(tt.body)))
		if err != nil {
			t.Fatalf("%q: %v", tt.body, err)
		}
		if got := p.IdentityConfig().RotationInterval; got != tt.want {
			t.Errorf("%q: RotationInterval = %v, want %v", tt.body, got, tt.want)
		}
	}
}

func TestNonceWindowDefaultsToTokenTTL(t *testing.T) {
	p, _, err := Parse([]byte(specDoc("identity:\n  token_ttl: 7m")))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.IdentityConfig().NonceWindow; got != 7*time.Minute {
		t.Fatalf("NonceWindow = %v", got)
	}
}

func TestIsLoopbackAddr(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:9443":        true,
		"127.255.0.9:1":         true,
		"[::1]:9443":            true,
		"[::ffff:127.0.0.1]:80": true,
		"localhost:9443":        false,
		":9443":                 false,
		"0.0.0.0:9443":          false,
		"[::]:9443":             false,
		"10.0.0.1:9443":         false,
		"127.0.0.1":             false,
	} {
		if got := IsLoopbackAddr(addr); got != want {
			t.Errorf("IsLoopbackAddr(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestLessFieldOrdersIndexesNumerically(t *testing.T) {
	in := []string{"spec.tool_rules[10].x", "spec.tool_rules[2].x", "metadata.name", "", "spec.tool_rules[2]"}
	want := []string{"", "metadata.name", "spec.tool_rules[2]", "spec.tool_rules[2].x", "spec.tool_rules[10].x"}
	ws := make([]Warning, len(in))
	for i, f := range in {
		ws[i] = Warning{Field: f}
	}
	sortWarnings(ws)
	for i := range want {
		if ws[i].Field != want[i] {
			t.Fatalf("got %v", ws)
		}
	}
}
