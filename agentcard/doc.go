// Package agentcard signs and verifies A2A AgentCards with SPIFFE
// X509-SVIDs and binds the signer to a SPIFFE identity.
//
// A signed card carries, in its signatures array, one JWS per signer in the
// A2A AgentCardSignature shape (RFC 7515 general JSON serialization with a
// detached payload):
//
//	{"protected": BASE64URL(header), "signature": BASE64URL(sig)}
//
// where the protected header is {alg, typ: "JOSE", kid, x5c, x5t#S256, iat,
// exp}, x5c is the SVID chain (leaf first), and the payload is the RFC 8785
// (JCS) form of the card without its signatures member. Cards stay raw JSON
// throughout: fields of any A2A version, and fields no version knows, are
// kept and signed as served, so nothing can be added to a signed card
// unnoticed.
//
// Sign and SignFile produce signatures from an SVID that comes from the
// SPIFFE Workload API or from PEM files; SignFile also serves as a drop-in
// for the Kagenti signer init-container (SignConfigFromEnv).
//
// A Verifier checks each signature against the trust bundle of the leaf's own
// trust domain (ParseBundle, ReloadingBundle, Bundles, OpenBundles):
//
//   - the card is strict JSON: no duplicate or case-variant keys, no
//     unpaired surrogates, no integers beyond 2^53, bounded size and depth;
//   - alg is one of ES256, ES384, ES512, RS256, PS256 and fits the leaf key's
//     type, curve and size; ECDSA signatures must be R||S;
//   - crit is refused, jku and x5u are never fetched, x5t#S256 and kid must
//     identify the leaf;
//   - the x5c chain verifies with go-spiffe's x509svid.Verify at the
//     verification time, so expired and not-yet-valid SVIDs fail, and the
//     leaf must be a signing X509-SVID (not a CA, digitalSignature, exactly
//     one URI SAN);
//   - iat and exp bound the signature's freshness (WithMaxAge).
//
// Every signature is tried; the card verifies when one does, and the Result
// reports a distinct Reason for each one that did not. Binding (WithTrustDomain,
// WithExpectedID, WithExpectedIDPattern, KubernetesID) then requires the
// verified SPIFFE ID to belong to the expected trust domain and, optionally,
// to be one workload's ID; its reasons and messages are the Kagenti
// operator's. Verify returns a nil error only for a card that verified and,
// if binding was configured, is bound.
//
// CompatKagenti additionally accepts cards signed by the Kagenti operator's
// signer (its canonical JSON and its kid), still with the chain checked at
// the verification time.
//
// FetchCard reads a card from an agent's well-known URL, optionally over
// SPIFFE mTLS so that the server can be required to be the card's signer.
package agentcard
