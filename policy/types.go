package policy

// The types below mirror the AgentPolicy document of AIP v1alpha2 (spec
// Appendix A) field for field. Optional scalars are pointers so that "absent"
// and "set to the zero value" stay distinguishable: defaults are applied by
// the accessor methods, never written back into the document, because the
// policy hash is computed over the document as written.

// APIVersionV1Alpha1 and APIVersionV1Alpha2 are the only accepted apiVersions.
const (
	APIVersionV1Alpha1 = "aip.io/v1alpha1"
	APIVersionV1Alpha2 = "aip.io/v1alpha2"
	KindAgentPolicy    = "AgentPolicy"
)

// Policy is a loaded AgentPolicy document.
type Policy struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Metadata   Metadata `json:"metadata"`
	Spec       Spec     `json:"spec"`

	// Path is the absolute path the policy was loaded from ("" when parsed
	// from memory). It is protected automatically.
	Path string `json:"-"`
	// Raw is the document exactly as read.
	Raw []byte `json:"-"`
}

// Metadata identifies the policy.
type Metadata struct {
	Name      string `json:"name"`
	Version   string `json:"version,omitempty"`
	Owner     string `json:"owner,omitempty"`
	Signature string `json:"signature,omitempty"`
}

// Spec is the policy body.
type Spec struct {
	Mode              string     `json:"mode,omitempty"`
	AllowedTools      []string   `json:"allowed_tools,omitempty"`
	AllowedMethods    []string   `json:"allowed_methods,omitempty"`
	DeniedMethods     []string   `json:"denied_methods,omitempty"`
	ProtectedPaths    []string   `json:"protected_paths,omitempty"`
	StrictArgsDefault *bool      `json:"strict_args_default,omitempty"`
	ToolRules         []ToolRule `json:"tool_rules,omitempty"`
	DLP               *DLP       `json:"dlp,omitempty"`
	Identity          *Identity  `json:"identity,omitempty"`
	Server            *Server    `json:"server,omitempty"`
}

// Rule actions.
const (
	ActionAllow = "allow"
	ActionBlock = "block"
	ActionAsk   = "ask"
)

// ToolRule constrains one tool (spec §3.5).
type ToolRule struct {
	Tool       string            `json:"tool"`
	Action     string            `json:"action,omitempty"`
	RateLimit  string            `json:"rate_limit,omitempty"`
	StrictArgs *bool             `json:"strict_args,omitempty"`
	SchemaHash string            `json:"schema_hash,omitempty"`
	AllowArgs  map[string]string `json:"allow_args,omitempty"`
}

// DLP request-side actions and redaction-failure actions (spec §3.6.4).
const (
	OnMatchBlock  = "block"
	OnMatchRedact = "redact"
	OnMatchWarn   = "warn"

	OnFailureBlock         = "block"
	OnFailureAllowOriginal = "allow_original"
	OnFailureReject        = "reject"

	ScopeRequest  = "request"
	ScopeResponse = "response"
	ScopeAll      = "all"
)

// DLP configures data-loss-prevention scanning (spec §3.6).
type DLP struct {
	Enabled              *bool        `json:"enabled,omitempty"`
	ScanRequests         *bool        `json:"scan_requests,omitempty"`
	ScanResponses        *bool        `json:"scan_responses,omitempty"`
	DetectEncoding       *bool        `json:"detect_encoding,omitempty"`
	FilterStderr         *bool        `json:"filter_stderr,omitempty"`
	MaxScanSize          string       `json:"max_scan_size,omitempty"`
	OnRequestMatch       string       `json:"on_request_match,omitempty"`
	OnRedactionFailure   string       `json:"on_redaction_failure,omitempty"`
	LogOriginalOnFailure *bool        `json:"log_original_on_failure,omitempty"`
	Patterns             []DLPPattern `json:"patterns"`
}

// DLPPattern is one named detector.
type DLPPattern struct {
	Name  string `json:"name"`
	Regex string `json:"regex"`
	Scope string `json:"scope,omitempty"`
}

// Session binding modes (spec §3.7.5).
const (
	BindingProcess = "process"
	BindingPolicy  = "policy"
	BindingStrict  = "strict"
)

// Identity configures identity tokens (spec §3.7). Parsed and validated here;
// enforced by package identity.
type Identity struct {
	Enabled               *bool         `json:"enabled,omitempty"`
	TokenTTL              string        `json:"token_ttl,omitempty"`
	RotationInterval      string        `json:"rotation_interval,omitempty"`
	RequireToken          *bool         `json:"require_token,omitempty"`
	SessionBinding        string        `json:"session_binding,omitempty"`
	NonceWindow           string        `json:"nonce_window,omitempty"`
	PolicyTransitionGrace string        `json:"policy_transition_grace,omitempty"`
	Audience              string        `json:"audience,omitempty"`
	NonceStorage          *NonceStorage `json:"nonce_storage,omitempty"`
	Keys                  *Keys         `json:"keys,omitempty"`
}

// NonceStorage selects the replay-prevention store (spec §3.7.9).
type NonceStorage struct {
	Type               string `json:"type,omitempty"`
	Address            string `json:"address,omitempty"`
	KeyPrefix          string `json:"key_prefix,omitempty"`
	ClockSkewTolerance string `json:"clock_skew_tolerance,omitempty"`
}

// Keys configures token signing keys (spec §5.8.1).
type Keys struct {
	SigningAlgorithm string `json:"signing_algorithm,omitempty"`
	KeySource        string `json:"key_source,omitempty"`
	KeyPath          string `json:"key_path,omitempty"`
	RotationPeriod   string `json:"rotation_period,omitempty"`
	JWKSEndpoint     string `json:"jwks_endpoint,omitempty"`
	GracePeriod      string `json:"grace_period,omitempty"`
}

// Server configures the HTTP validation server (spec §3.8).
type Server struct {
	Enabled             *bool                `json:"enabled,omitempty"`
	Listen              string               `json:"listen,omitempty"`
	FailoverMode        string               `json:"failover_mode,omitempty"`
	Timeout             string               `json:"timeout,omitempty"`
	TLS                 *TLS                 `json:"tls,omitempty"`
	FailOpenConstraints *FailOpenConstraints `json:"fail_open_constraints,omitempty"`
	Endpoints           *Endpoints           `json:"endpoints,omitempty"`
}

// TLS holds server certificate paths. ClientCA and RequireClientCert are an
// extension (from the upstream JSON schema) for mTLS, which §6.6 requires.
type TLS struct {
	Cert              string `json:"cert,omitempty"`
	Key               string `json:"key,omitempty"`
	ClientCA          string `json:"client_ca,omitempty"`
	RequireClientCert *bool  `json:"require_client_cert,omitempty"`
}

// FailOpenConstraints bound fail_open operation (spec §3.8.3).
type FailOpenConstraints struct {
	AllowedTools       []string `json:"allowed_tools,omitempty"`
	MaxDuration        string   `json:"max_duration,omitempty"`
	MaxRequests        *int     `json:"max_requests,omitempty"`
	AlertWebhook       string   `json:"alert_webhook,omitempty"`
	RequireLocalPolicy *bool    `json:"require_local_policy,omitempty"`
}

// Endpoints overrides server paths (spec §3.8.6).
type Endpoints struct {
	Validate string `json:"validate,omitempty"`
	Revoke   string `json:"revoke,omitempty"`
	JWKS     string `json:"jwks,omitempty"`
	Health   string `json:"health,omitempty"`
	Metrics  string `json:"metrics,omitempty"`
}
