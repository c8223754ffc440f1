package main

import (
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/agentid/agentid/audit"
	"github.com/agentid/agentid/internal/atomicfile"
	"github.com/agentid/agentid/internal/pemkey"
	"github.com/agentid/agentid/policy"
)

// addPolicyIntegrityCmds adds "policy hash|sign|verify" to the policy
// command.
func addPolicyIntegrityCmds(policyCmd *cobra.Command) {
	policyCmd.AddCommand(&cobra.Command{
		Use:   "hash FILE",
		Short: "Print the policy hash (64 hex: SHA-256 of the RFC 8785 canonical form)",
		Long: `Validate the policy and print its hash: SHA-256 over the RFC 8785 (JCS)
canonical form of the document as written, without metadata.signature and
without defaults. Comments, key order and formatting do not change it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, _, err := policy.Load(args[0])
			if err != nil {
				return err
			}
			h, err := p.Hash()
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), h)
			return err
		},
	})

	var keyPath, out string
	sign := &cobra.Command{
		Use:   "sign --key KEY FILE",
		Short: "Sign a policy with Ed25519 (sets metadata.signature)",
		Long: `Validate the policy, sign its canonical form with the Ed25519 private key KEY
(PKCS#8 PEM, e.g. "agentid keys generate --alg EdDSA") and write the policy
with metadata.signature: "ed25519:<base64>" — in place, or to --out (- for
stdout). Only the signature line changes; comments and layout are kept.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if keyPath == "" {
				return errors.New("--key is required")
			}
			key, err := pemkey.LoadEd25519PrivateKey(keyPath)
			if err != nil {
				return fmt.Errorf("--key: %w", err)
			}
			p, _, err := policy.Load(args[0])
			if err != nil {
				return err
			}
			signed, err := policy.Sign(p.Raw, key)
			if err != nil {
				return err
			}
			switch out {
			case "-":
				_, err = cmd.OutOrStdout().Write(signed)
				return err
			case "":
				if err := atomicfile.Write(p.Path, signed, 0o644, atomicfile.Options{KeepMode: true}); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "signed %s\n", p.Path)
				return nil
			default:
				return atomicfile.Write(out, signed, 0o644, atomicfile.Options{})
			}
		},
	}
	sign.Flags().StringVar(&keyPath, "key", "", "Ed25519 private key, PKCS#8 PEM (required)")
	sign.Flags().StringVar(&out, "out", "", "write the signed policy to FILE (- for stdout) instead of in place")
	policyCmd.AddCommand(sign)

	var pubPath string
	verify := &cobra.Command{
		Use:   "verify --pubkey PUB FILE",
		Short: "Verify a policy's Ed25519 signature; exit 0 valid, 1 missing or invalid",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if pubPath == "" {
				return errors.New("--pubkey is required")
			}
			pub, err := pemkey.LoadEd25519PublicKey(pubPath)
			if err != nil {
				return fmt.Errorf("--pubkey: %w", err)
			}
			p, _, err := policy.Load(args[0])
			if err != nil {
				return err
			}
			if err := policy.VerifySignature(p, pub); err != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %v\n", args[0], err)
				return exitError{1}
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s: signature valid\n", args[0])
			return err
		},
	}
	verify.Flags().StringVar(&pubPath, "pubkey", "", "Ed25519 public key, PEM (required)")
	policyCmd.AddCommand(verify)
}

// loadPolicyPubkey reads the --policy-pubkey file; "" means no key.
func loadPolicyPubkey(path string) (ed25519.PublicKey, error) {
	if path == "" {
		return nil, nil
	}
	pub, err := pemkey.LoadEd25519PublicKey(path)
	if err != nil {
		return nil, fmt.Errorf("--policy-pubkey: %w", err)
	}
	return pub, nil
}

// openAuditLog opens the audit log at path, or at audit.DefaultPath when
// path is "".
func openAuditLog(path string) (*audit.Logger, error) {
	if path == "" {
		var err error
		if path, err = audit.DefaultPath(); err != nil {
			return nil, err
		}
	}
	return audit.Open(path)
}
