package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/agentid/agentid/identity"
	"github.com/agentid/agentid/internal/atomicfile"
	"github.com/agentid/agentid/policy"
)

func newTokenCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Issue, inspect and verify AIP identity tokens",
	}
	cmd.AddCommand(newTokenIssueCmd(), newTokenInspectCmd(), newTokenVerifyCmd())
	_ = g
	return cmd
}

// loadPolicyForToken loads a policy (refusing a malformed signature) and
// its hash.
func loadPolicyForToken(path string) (*policy.Policy, string, error) {
	p, _, err := policy.LoadVerified(path, nil)
	if err != nil {
		return nil, "", err
	}
	h, err := p.Hash()
	if err != nil {
		return nil, "", err
	}
	return p, h, nil
}

func newTokenIssueCmd() *cobra.Command {
	var policyPath, keyPath, jwksOut string
	c := &cobra.Command{
		Use:   "issue --policy FILE [--key FILE]",
		Short: "Issue a token for a policy and print it",
		Long: `Issue one identity token for the policy's agent and print it on stdout.

The token is signed with --key (a PEM private key, e.g. from "agentid keys
generate"), else with the policy's identity.keys (key_source file: key_path).
With key_source generate and no --key the key exists only in this process, so
nothing could verify the token later: pass --jwks-out to keep its public key.
The binding names this process; "agentid token verify" does not check it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if policyPath == "" {
				return errors.New("--policy is required")
			}
			p, hash, err := loadPolicyForToken(policyPath)
			if err != nil {
				return err
			}
			ks, err := identity.LoadSigningKeys(p, keyPath, identity.KeySetOptions{})
			if err != nil {
				return err
			}
			if ks.Generated() && jwksOut == "" {
				fmt.Fprintln(cmd.ErrOrStderr(), "agentid: warning: signed with a key generated for this command only; use --key or --jwks-out to verify the token later")
			}
			m, err := identity.NewManager(identity.Config{Policy: p, PolicyHash: hash, Keys: ks})
			if err != nil {
				return err
			}
			defer m.Close()
			tok, _, err := m.Issue(cmd.Context())
			if err != nil {
				return err
			}
			if jwksOut != "" {
				doc, err := ks.JWKS()
				if err != nil {
					return err
				}
				if err := atomicfile.Write(jwksOut, append(doc, '\n'), 0o644, atomicfile.Options{}); err != nil {
					return err
				}
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), tok)
			return err
		},
	}
	c.Flags().StringVar(&policyPath, "policy", "", "policy file (required)")
	c.Flags().StringVar(&keyPath, "key", "", "PEM private key to sign with")
	c.Flags().StringVar(&jwksOut, "jwks-out", "", "write the JWKS of the signing key to FILE")
	return c
}

func newTokenInspectCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "inspect TOKEN",
		Short: "Print a token's header and claims WITHOUT verifying it",
		Long: `Decode a token and print {"header":…,"claims":…} as JSON. Nothing is verified:
not the signature, the expiry or anything else ("verified": false). Use
"agentid token verify" to check a token. TOKEN "-" reads it from stdin.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			tok, err := readArgOrStdin(cmd, args[0])
			if err != nil {
				return err
			}
			h, p, err := identity.DecodeUnverified(tok)
			if err != nil {
				return err
			}
			out := map[string]any{"verified": false}
			for name, raw := range map[string][]byte{"header": h, "claims": p} {
				var v any
				if err := json.Unmarshal(raw, &v); err != nil {
					out[name+"_raw"] = string(raw)
					out[name+"_error"] = "not JSON"
					continue
				}
				out[name] = v
			}
			var buf bytes.Buffer
			e := json.NewEncoder(&buf)
			e.SetEscapeHTML(false)
			e.SetIndent("", "  ")
			if err := e.Encode(out); err != nil {
				return err
			}
			fmt.Fprintln(cmd.ErrOrStderr(), "agentid: NOT VERIFIED: the signature and claims were not checked")
			_, err = cmd.OutOrStdout().Write(buf.Bytes())
			return err
		},
	}
}

func newTokenVerifyCmd() *cobra.Command {
	var policyPath, jwksSrc, keyPath, revFile string
	var asJSON bool
	c := &cobra.Command{
		Use:   "verify --policy FILE (--jwks FILE|URL | --key FILE) TOKEN",
		Short: "Verify a token offline; exit 0 valid, 1 invalid (printing the token_error)",
		Long: `Verify a token against a policy: signature (keys from --jwks, a JWKS file or
https URL, or --key, a PEM public or private key), expiry, audience, policy
hash, and revocations from --revocation-file. It is an offline check: the
session binding and replay (nonce) steps need the issuing process's state
and are not performed, and the token is not consumed.

Valid: prints "valid" and the token's session, id and expiry; exit 0.
Invalid: prints the token_error (token_expired, audience_mismatch,
policy_changed, malformed, signature_invalid, session_revoked, …); exit 1.
TOKEN "-" reads it from stdin.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if policyPath == "" {
				return errors.New("--policy is required")
			}
			if (jwksSrc == "") == (keyPath == "") {
				return errors.New("give exactly one of --jwks and --key")
			}
			tok, err := readArgOrStdin(cmd, args[0])
			if err != nil {
				return err
			}
			p, hash, err := loadPolicyForToken(policyPath)
			if err != nil {
				return err
			}
			var keys identity.KeyResolver
			if keyPath != "" {
				if keys, err = identity.JWKSFromKeyFiles(keyPath); err != nil {
					return err
				}
			} else if keys, err = identity.LoadJWKS(cmd.Context(), jwksSrc, identity.JWKSFetchOptions{}); err != nil {
				return fmt.Errorf("--jwks: %w", err)
			}
			v, err := identity.NewOfflineVerifier(cmd.Context(), identity.OfflineConfig{
				Policy: p, PolicyHash: hash, Keys: keys, RevocationFile: revFile,
			})
			if err != nil {
				return err
			}
			claims, verr := v.Validate(cmd.Context(), tok)
			out := cmd.OutOrStdout()
			if verr != nil {
				ve := identity.AsValidationError(verr)
				if ve == nil {
					return verr
				}
				te := ve.TokenError
				if te == "" {
					te = "token_required"
				}
				if asJSON {
					writeJSON(out, map[string]any{"valid": false, "code": ve.Code, "token_error": te, "reason": ve.Reason})
				} else {
					fmt.Fprintln(out, te)
					fmt.Fprintf(cmd.ErrOrStderr(), "agentid: token invalid (%d): %s\n", ve.Code, ve.Reason)
				}
				return exitError{1}
			}
			if asJSON {
				writeJSON(out, map[string]any{"valid": true, "session_id": claims.SessionID, "token_id": claims.Nonce,
					"agent_id": claims.AgentID, "expires_at": identity.FormatTime(claims.ExpiresAt)})
			} else {
				fmt.Fprintf(out, "valid: agent %s, session %s, token %s, expires %s\n", claims.AgentID, claims.SessionID, claims.Nonce, identity.FormatTime(claims.ExpiresAt))
				fmt.Fprintln(cmd.ErrOrStderr(), "agentid: offline verification: session binding and replay were not checked")
			}
			return nil
		},
	}
	c.Flags().StringVar(&policyPath, "policy", "", "policy file (required): audience and policy hash")
	c.Flags().StringVar(&jwksSrc, "jwks", "", "JWKS file, or https URL (http only on loopback)")
	c.Flags().StringVar(&keyPath, "key", "", "PEM public (or private) key")
	c.Flags().StringVar(&revFile, "revocation-file", "", `revocation list {"revoked_sessions":[…],"revoked_tokens":[…]}`)
	c.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return c
}

func writeJSON(w io.Writer, v any) {
	e := json.NewEncoder(w)
	e.SetEscapeHTML(false)
	_ = e.Encode(v)
}
