package identity

import (
	"time"

	"github.com/agentid/agentid/policy"
)

// TokenRetention is how long a token's nonce must be remembered, as used
// (the replay check) or as revoked (a revocation file's revoked_tokens):
// as long as the token can still be presented, which is nonce_window (at
// least token_ttl) plus nonce_storage.clock_skew_tolerance (§3.7.9).
// Forgetting it sooner would let a revoked or used token through again.
func TokenRetention(idc policy.IdentityConfig) time.Duration {
	return max(idc.NonceWindow, idc.TokenTTL) + idc.NonceStorage.ClockSkewTolerance
}
