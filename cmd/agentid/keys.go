package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/agentid/agentid/identity"
	"github.com/agentid/agentid/internal/atomicfile"
)

func newKeysCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Generate and publish identity-token signing keys",
	}
	var alg, out, pubOut string
	var force bool
	gen := &cobra.Command{
		Use:   "generate",
		Short: "Generate a signing key (PKCS#8 PEM, mode 0600)",
		Long: `Generate a private signing key for identity tokens and write it as a PKCS#8
PEM file with mode 0600 (or to stdout without --out). The key id (kid, the
RFC 7638 thumbprint) is printed on stderr. --pub-out also writes the public
key (PKIX PEM). For policy signatures use --alg EdDSA: the same file works
with "agentid policy sign --key".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !slices.Contains(identity.AsymmetricAlgs, alg) {
				return fmt.Errorf("--alg must be ES256, ES384, EdDSA or RS256, not %q", alg)
			}
			kf, err := identity.GenerateKeyFiles(alg)
			if err != nil {
				return err
			}
			if out == "" || out == "-" {
				if _, err := cmd.OutOrStdout().Write(kf.PrivatePEM); err != nil {
					return err
				}
			} else if err := writeOut(out, kf.PrivatePEM, 0o600, force); err != nil {
				return err
			}
			if pubOut != "" {
				if err := writeOut(pubOut, kf.PublicPEM, 0o644, force); err != nil {
					return err
				}
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "%s key, kid %s\n", alg, kf.KID)
			return nil
		},
	}
	gen.Flags().StringVar(&alg, "alg", identity.DefaultAlg, "algorithm: ES256, ES384, EdDSA or RS256")
	gen.Flags().StringVar(&out, "out", "", "write the private key to FILE (mode 0600) instead of stdout")
	gen.Flags().StringVar(&pubOut, "pub-out", "", "also write the public key (PKIX PEM) to FILE")
	gen.Flags().BoolVar(&force, "force", false, "overwrite existing files")
	cmd.AddCommand(gen)

	cmd.AddCommand(&cobra.Command{
		Use:   "jwks KEYFILE...",
		Short: "Print the JWKS document of the public halves of PEM keys",
		Long: `Print {"keys":[…]} for the given PEM files (private or public keys), with
kid = RFC 7638 thumbprint, use "sig" and alg bound to the key type. Private
key material is never printed.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			j, err := identity.JWKSFromKeyFiles(args...)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s\n", j.Document())
			return err
		},
	})
	_ = g
	return cmd
}

// writeOut writes a file named by a flag. Without --force an existing
// file is an error.
func writeOut(path string, data []byte, perm fs.FileMode, force bool) error {
	err := atomicfile.Write(path, data, perm, atomicfile.Options{NoReplace: !force})
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s exists (use --force to overwrite)", path)
	}
	return err
}

// readArgOrStdin returns arg, or stdin's content without surrounding white
// space when arg is "-".
func readArgOrStdin(cmd *cobra.Command, arg string) (string, error) {
	if arg != "-" {
		return arg, nil
	}
	b, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), 1<<20))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}
