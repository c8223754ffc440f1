package enforce

import (
	"crypto/ed25519"
	"errors"

	"github.com/agentid/agentid/aip"

	"github.com/agentid/agentid/dlp"
	"github.com/agentid/agentid/policy"
)

// Policy is a policy ready to enforce: verified, hashed and compiled. It is
// immutable once built.
type Policy struct {
	Policy   *policy.Policy
	Engine   *policy.Engine
	DLP      *dlp.Scanner
	Hash     string
	Warnings []policy.Warning
	// Server is spec.server with defaults applied, computed once: the
	// validation server and failover read it per call.
	Server policy.ServerConfig

	opts LoadOptions
}

// LoadOptions says how a policy is prepared. The same options are used again
// by Core.Reload.
type LoadOptions struct {
	// PublicKey, when set, requires a valid Ed25519 signature from it in
	// metadata.signature. Without it, a signature that is present must at
	// least be well formed (a malformed one cannot be anybody's).
	PublicKey ed25519.PublicKey
	// ExtraProtected are paths the agent must not reach besides the policy
	// file itself, e.g. the audit log and the revocation file.
	ExtraProtected []string
	// HomeDir and WorkDir are passed to policy.NewEngine ("" for the
	// process's own).
	HomeDir, WorkDir string
	// Paths resolves symlinks in path-like arguments: policy.HostPaths for
	// a proxy beside the server it protects; nil checks lexically only.
	Paths policy.PathResolver
}

// Load reads the policy file at path, verifies its signature
// (policy.LoadVerified) and prepares it.
func Load(path string, opts LoadOptions) (*Policy, error) {
	p, warnings, err := policy.LoadVerified(path, opts.PublicKey)
	if err != nil {
		return nil, err
	}
	c, err := Compile(p, opts)
	if err != nil {
		return nil, err
	}
	c.Warnings = warnings
	return c, nil
}

// Compile prepares an already parsed policy whose signature the caller
// has checked, if it needs one (Load does both). A nil policy yields the
// fail-closed policy that blocks every tool call (AIP conformance auth-050).
func Compile(p *policy.Policy, opts LoadOptions) (*Policy, error) {
	var hash string
	if p != nil {
		h, err := p.Hash()
		if err != nil {
			return nil, err
		}
		hash = h
	}
	engine, err := policy.NewEngine(p, policy.EngineOptions{
		ExtraProtectedPaths: opts.ExtraProtected, HomeDir: opts.HomeDir, WorkDir: opts.WorkDir, Paths: opts.Paths,
	})
	if err != nil {
		return nil, err
	}
	var scanner *dlp.Scanner
	if p != nil {
		if scanner, err = dlp.New(p.Spec.DLP); err != nil {
			return nil, err
		}
	}
	server := policy.ServerConfig{FailoverMode: FailClosed}
	if p != nil {
		server = p.ServerConfig()
	}
	return &Policy{Policy: p, Engine: engine, DLP: scanner, Hash: hash, Server: server, opts: opts}, nil
}

// Mode is the policy mode in force ("enforce" for the fail-closed policy).
func (p *Policy) Mode() string {
	if p.Policy == nil {
		return aip.ModeEnforce
	}
	return p.Policy.Mode()
}

// ServerFailover is the policy's failover_mode (§3.8.3), fail_closed when
// unset or when no policy is loaded.
func (p *Policy) ServerFailover() string {
	return p.Server.FailoverMode
}

// Path is the policy file's path, "" when it was not loaded from a file.
func (p *Policy) Path() string {
	if p.Policy == nil {
		return ""
	}
	return p.Policy.Path
}

// Reloaded loads p's file again with the options p was loaded with.
func (p *Policy) Reloaded() (*Policy, error) {
	if p.Path() == "" {
		return nil, errors.New("enforce: the policy was not loaded from a file")
	}
	return Load(p.Path(), p.opts)
}
