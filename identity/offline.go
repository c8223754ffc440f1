package identity

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/agentid/agentid/policy"
	"github.com/agentid/agentid/store/memory"
)

// OfflineConfig configures NewOfflineVerifier.
type OfflineConfig struct {
	// Policy supplies the audience (identity.audience or metadata.name) and
	// the retentions; PolicyHash is its hash. Both required.
	Policy     *policy.Policy
	PolicyHash string
	// Keys verify the signature: a *JWKS (LoadJWKS, JWKSFromKeyFiles).
	// Required.
	Keys KeyResolver
	// RevocationFile, when set, is read once (§5.6.2 format): its sessions
	// and tokens are refused. Unlike for a RevocationFileWatcher, a
	// missing file is an error: the caller named it to have it checked.
	RevocationFile string
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// NewOfflineVerifier returns a Verifier for a process that did not issue
// the tokens, such as `agentid token verify`: it checks revocation (with
// RevocationFile), the signature, expiry, audience and policy hash, but not
// the session binding or replay, which need the issuing process's state,
// and it does not consume a token's nonce.
func NewOfflineVerifier(ctx context.Context, c OfflineConfig) (*Verifier, error) {
	if c.Policy == nil {
		return nil, errors.New("identity: offline verifier needs a policy")
	}
	idc := c.Policy.IdentityConfig()
	if c.Now == nil {
		c.Now = time.Now
	}
	vc := VerifierConfig{Keys: c.Keys, Audience: idc.Audience, PolicyHash: c.PolicyHash, DisableReplayCheck: true, Now: c.Now}
	if c.RevocationFile != "" {
		if _, err := os.Stat(c.RevocationFile); err != nil {
			return nil, err
		}
		revs := memory.NewRevocationStore(memory.Options{Now: c.Now})
		w := &RevocationFileWatcher{Path: c.RevocationFile, Store: revs, Now: c.Now,
			SessionTTL: DefaultSessionRetention, TokenTTL: TokenRetention(idc)}
		if _, err := w.Poll(ctx); err != nil {
			return nil, err
		}
		vc.Revocations = revs
	}
	return NewVerifier(vc)
}
