package proxy

import (
	"crypto/ed25519"
	"fmt"

	"github.com/agentid/agentid/dlp"
	"github.com/agentid/agentid/policy"
)

// Loaded is a policy ready to enforce: verified, hashed and compiled.
type Loaded struct {
	Policy   *policy.Policy
	Engine   *policy.Engine
	DLP      *dlp.Scanner
	Hash     string
	Warnings []policy.Warning
}

// Load reads the policy at path and prepares it for the proxy. With a
// public key the policy must carry a valid Ed25519 signature from it;
// without one, a signature that is present must at least be well formed
// (a malformed one cannot be anybody's). extraProtected are paths the agent
// must not reach besides the policy file itself, e.g. the audit log.
func Load(path string, pub ed25519.PublicKey, extraProtected []string) (*Loaded, error) {
	p, warnings, err := policy.Load(path)
	if err != nil {
		return nil, err
	}
	if pub != nil {
		if err := policy.VerifySignature(p, pub); err != nil {
			return nil, fmt.Errorf("proxy: %s: %w", path, err)
		}
	} else if err := policy.CheckSignatureFormat(p); err != nil {
		return nil, fmt.Errorf("proxy: %s: %w", path, err)
	}
	hash, err := p.Hash()
	if err != nil {
		return nil, err
	}
	engine, err := policy.NewEngine(p, policy.EngineOptions{ExtraProtectedPaths: extraProtected})
	if err != nil {
		return nil, err
	}
	scanner, err := dlp.New(p.Spec.DLP)
	if err != nil {
		return nil, err
	}
	return &Loaded{Policy: p, Engine: engine, DLP: scanner, Hash: hash, Warnings: warnings}, nil
}
