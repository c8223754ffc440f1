package policy

import (
	"time"

	"github.com/agentid/agentid/aip"
)

// Defaults from spec §3 and Appendix A. The accessors below apply them on
// read and never write them into the document, whose hash covers only what
// the author wrote (decision 12). The accessors assume a policy that passed
// Load or Parse; on an unvalidated value an unparsable duration reads as its
// default.
const (
	DefaultMode               = aip.ModeEnforce
	DefaultMaxScanBytes int64 = 1 << 20

	DefaultTokenTTL              = 5 * time.Minute
	DefaultRotationInterval      = 4 * time.Minute
	DefaultSessionBinding        = BindingProcess
	DefaultNonceStorageType      = "memory"
	DefaultNonceKeyPrefix        = "aip:nonce:"
	DefaultClockSkewTolerance    = 30 * time.Second
	DefaultSigningAlgorithm      = "ES256"
	DefaultKeySource             = "generate"
	DefaultKeyRotationPeriod     = 7 * 24 * time.Hour
	DefaultListen                = "127.0.0.1:9443"
	DefaultFailoverMode          = "fail_closed"
	DefaultServerTimeout         = 5 * time.Second
	DefaultValidatePath          = "/v1/validate"
	DefaultRevokePath            = "/v1/revoke"
	DefaultJWKSPath              = "/v1/jwks"
	DefaultHealthPath            = "/health"
	DefaultMetricsPath           = "/metrics"
	defaultRotationFractionOfTTL = 0.8
)

// Mode returns spec.mode, "enforce" when unset.
func (p *Policy) Mode() string {
	if p.Spec.Mode == "" {
		return DefaultMode
	}
	return p.Spec.Mode
}

// StrictArgsDefault returns spec.strict_args_default (false when unset).
func (p *Policy) StrictArgsDefault() bool {
	return p.Spec.StrictArgsDefault != nil && *p.Spec.StrictArgsDefault
}

// EffectiveAction returns the rule's action, "allow" when unset.
func (r ToolRule) EffectiveAction() string {
	if r.Action == "" {
		return ActionAllow
	}
	return r.Action
}

// IsEnabled reports whether DLP is on: true when the dlp block is present
// and enabled is unset (§3.6). A nil *DLP (no block) is off.
func (d *DLP) IsEnabled() bool {
	return d != nil && (d.Enabled == nil || *d.Enabled)
}

// ScansRequests reports whether tool arguments are scanned (default false).
func (d *DLP) ScansRequests() bool {
	return d.IsEnabled() && d.ScanRequests != nil && *d.ScanRequests
}

// ScansResponses reports whether tool results are scanned (default true).
func (d *DLP) ScansResponses() bool {
	return d.IsEnabled() && (d.ScanResponses == nil || *d.ScanResponses)
}

// MaxScanBytes returns max_scan_size in bytes, 1 MiB when unset.
func (d *DLP) MaxScanBytes() int64 {
	if d == nil || d.MaxScanSize == "" {
		return DefaultMaxScanBytes
	}
	n, err := ParseSize(d.MaxScanSize)
	if err != nil {
		return DefaultMaxScanBytes
	}
	return n
}

// RequestMatchAction returns on_request_match, "block" when unset.
func (d *DLP) RequestMatchAction() string {
	if d == nil || d.OnRequestMatch == "" {
		return OnMatchBlock
	}
	return d.OnRequestMatch
}

// RedactionFailureAction returns on_redaction_failure, "block" when unset.
func (d *DLP) RedactionFailureAction() string {
	if d == nil || d.OnRedactionFailure == "" {
		return OnFailureBlock
	}
	return d.OnRedactionFailure
}

// EffectiveScope returns the pattern's scope, "all" when unset.
func (pt DLPPattern) EffectiveScope() string {
	if pt.Scope == "" {
		return ScopeAll
	}
	return pt.Scope
}

// IdentityConfig is spec.identity with every default applied and every
// duration parsed.
type IdentityConfig struct {
	Enabled      bool
	RequireToken bool
	TokenTTL     time.Duration
	// RotationInterval is 0 when rotation is disabled ("0s"). Unset, it is
	// min(4m, 0.8*TokenTTL) (decision 10), so a short TTL alone is valid.
	RotationInterval time.Duration
	SessionBinding   string
	// NonceWindow defaults to TokenTTL.
	NonceWindow           time.Duration
	PolicyTransitionGrace time.Duration
	// Audience defaults to metadata.name.
	Audience     string
	NonceStorage NonceStorageConfig
	Keys         KeysConfig
}

// NonceStorageConfig is spec.identity.nonce_storage with defaults applied.
type NonceStorageConfig struct {
	Type               string // memory, redis or postgres
	Address            string
	KeyPrefix          string
	ClockSkewTolerance time.Duration
}

// KeysConfig is spec.identity.keys with defaults applied.
type KeysConfig struct {
	SigningAlgorithm string
	KeySource        string // generate or file
	KeyPath          string
	RotationPeriod   time.Duration
	// GracePeriod is how long a retired key stays in the JWKS beyond
	// TokenTTL (§5.8.4); 0 when unset.
	GracePeriod time.Duration
	// JWKSEndpoint is the JWKS path: server.endpoints.jwks, else
	// keys.jwks_endpoint, else /v1/jwks (the two may not differ).
	JWKSEndpoint string
}

// IdentityConfig resolves spec.identity. Without an identity block it
// returns the defaults with Enabled false.
func (p *Policy) IdentityConfig() IdentityConfig {
	id := p.Spec.Identity
	if id == nil {
		id = &Identity{}
	}
	c := IdentityConfig{
		Enabled:               id.Enabled != nil && *id.Enabled,
		RequireToken:          id.RequireToken != nil && *id.RequireToken,
		TokenTTL:              defaultDuration(id.TokenTTL, DefaultTokenTTL),
		SessionBinding:        defaultString(id.SessionBinding, DefaultSessionBinding),
		PolicyTransitionGrace: defaultDuration(id.PolicyTransitionGrace, 0),
		Audience:              defaultString(id.Audience, p.Metadata.Name),
	}
	if id.RotationInterval != "" {
		c.RotationInterval = defaultDuration(id.RotationInterval, DefaultRotationInterval)
	} else {
		c.RotationInterval = min(DefaultRotationInterval, time.Duration(defaultRotationFractionOfTTL*float64(c.TokenTTL)))
	}
	c.NonceWindow = defaultDuration(id.NonceWindow, c.TokenTTL)

	ns := id.NonceStorage
	if ns == nil {
		ns = &NonceStorage{}
	}
	c.NonceStorage = NonceStorageConfig{
		Type:               defaultString(ns.Type, DefaultNonceStorageType),
		Address:            ns.Address,
		KeyPrefix:          defaultString(ns.KeyPrefix, DefaultNonceKeyPrefix),
		ClockSkewTolerance: defaultDuration(ns.ClockSkewTolerance, DefaultClockSkewTolerance),
	}

	k := id.Keys
	if k == nil {
		k = &Keys{}
	}
	c.Keys = KeysConfig{
		SigningAlgorithm: defaultString(k.SigningAlgorithm, DefaultSigningAlgorithm),
		KeySource:        defaultString(k.KeySource, DefaultKeySource),
		KeyPath:          k.KeyPath,
		RotationPeriod:   defaultDuration(k.RotationPeriod, DefaultKeyRotationPeriod),
		GracePeriod:      defaultDuration(k.GracePeriod, 0),
		JWKSEndpoint:     p.jwksPath(),
	}
	return c
}

func (p *Policy) jwksPath() string {
	if s := p.Spec.Server; s != nil && s.Endpoints != nil && s.Endpoints.JWKS != "" {
		return s.Endpoints.JWKS
	}
	if id := p.Spec.Identity; id != nil && id.Keys != nil && id.Keys.JWKSEndpoint != "" {
		return id.Keys.JWKSEndpoint
	}
	return DefaultJWKSPath
}

// ServerConfig is spec.server with every default applied.
type ServerConfig struct {
	Enabled      bool
	Listen       string
	FailoverMode string // fail_closed, fail_open or local_policy
	Timeout      time.Duration
	TLS          TLSConfig
	// FailOpen is nil when fail_open_constraints is absent.
	FailOpen  *FailOpenLimits
	Endpoints EndpointPaths
}

// TLSConfig holds the server's certificate paths; TLS is on when Cert and
// Key are set.
type TLSConfig struct {
	Cert, Key         string
	ClientCA          string
	RequireClientCert bool
}

// Enabled reports whether the server must serve TLS.
func (t TLSConfig) Enabled() bool { return t.Cert != "" && t.Key != "" }

// FailOpenLimits is spec.server.fail_open_constraints; zero MaxDuration and
// MaxRequests mean "no limit".
type FailOpenLimits struct {
	AllowedTools       []string
	MaxDuration        time.Duration
	MaxRequests        int
	AlertWebhook       string
	RequireLocalPolicy bool
}

// EndpointPaths are the server's URL paths with defaults applied.
type EndpointPaths struct {
	Validate, Revoke, JWKS, Health, Metrics string
}

// Loopback reports whether the server listens only on a loopback IP; see
// IsLoopbackAddr.
func (c ServerConfig) Loopback() bool { return IsLoopbackAddr(c.Listen) }

// ServerConfig resolves spec.server. Without a server block it returns the
// defaults with Enabled false.
func (p *Policy) ServerConfig() ServerConfig {
	s := p.Spec.Server
	if s == nil {
		s = &Server{}
	}
	c := ServerConfig{
		Enabled:      s.Enabled != nil && *s.Enabled,
		Listen:       defaultString(s.Listen, DefaultListen),
		FailoverMode: defaultString(s.FailoverMode, DefaultFailoverMode),
		Timeout:      defaultDuration(s.Timeout, DefaultServerTimeout),
	}
	if t := s.TLS; t != nil {
		c.TLS = TLSConfig{
			Cert:              t.Cert,
			Key:               t.Key,
			ClientCA:          t.ClientCA,
			RequireClientCert: t.RequireClientCert != nil && *t.RequireClientCert,
		}
	}
	if f := s.FailOpenConstraints; f != nil {
		c.FailOpen = &FailOpenLimits{
			AllowedTools:       append([]string(nil), f.AllowedTools...),
			MaxDuration:        defaultDuration(f.MaxDuration, 0),
			AlertWebhook:       f.AlertWebhook,
			RequireLocalPolicy: f.RequireLocalPolicy != nil && *f.RequireLocalPolicy,
		}
		if f.MaxRequests != nil {
			c.FailOpen.MaxRequests = *f.MaxRequests
		}
	}
	e := s.Endpoints
	if e == nil {
		e = &Endpoints{}
	}
	c.Endpoints = EndpointPaths{
		Validate: defaultString(e.Validate, DefaultValidatePath),
		Revoke:   defaultString(e.Revoke, DefaultRevokePath),
		JWKS:     p.jwksPath(),
		Health:   defaultString(e.Health, DefaultHealthPath),
		Metrics:  defaultString(e.Metrics, DefaultMetricsPath),
	}
	return c
}

func defaultString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func defaultDuration(s string, def time.Duration) time.Duration {
	if s == "" {
		return def
	}
	d, err := ParseDuration(s)
	if err != nil {
		return def
	}
	return d
}
