package enforce

// Limits of multi-round-trip calls, for the tests of package enforce_test.
const (
	MaxRoundsPerCall = maxRoundsPerCall
	MaxWaitingRounds = maxWaitingRounds
	RoundTTL         = roundTTL
)
