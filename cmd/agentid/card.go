package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"

	"github.com/agentid/agentid/agentcard"
)

// newCardCmd is `agentid card`: sign and verify A2A AgentCards with SPIFFE
// X509-SVIDs. All logic lives in package agentcard; this file maps flags.
func newCardCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "card",
		Short: "Sign and verify A2A AgentCards with SPIFFE X509-SVIDs",
	}
	cmd.AddCommand(newCardSignCmd(g), newCardVerifyCmd(g))
	return cmd
}

func newCardSignCmd(g *globalFlags) *cobra.Command {
	var (
		cfg      agentcard.SignConfig
		validity time.Duration
		pss      bool
	)
	cmd := &cobra.Command{
		Use:   "sign [--in CARD] (--workload-api ADDR | --cert CHAIN.pem --key KEY.pem) [--out FILE]",
		Short: "Sign an AgentCard with an X509-SVID (JWS with x5c, RFC 8785 payload)",
		Long: `Sign an AgentCard with the workload's X509-SVID, fetched from the SPIFFE
Workload API or loaded from PEM files. The signature is appended to the
card's signatures array; the payload is the RFC 8785 form of the card
without signatures, and every field of the card is kept and signed.

Without --in, sign runs as a drop-in for the Kagenti signer init-container:
it reads ` + agentcard.EnvUnsignedCard + ` (default ` + agentcard.DefaultUnsignedCard + `), writes
` + agentcard.EnvSignedCard + ` (default ` + agentcard.DefaultSignedCard + `), fetches the SVID from
` + agentcard.EnvSocket + ` (default ` + agentcard.DefaultSocket + `) and gives up after
` + agentcard.EnvSignTimeout + ` (default 30s). Flags override those variables.

With --in and no --out, the signed card goes to stdout.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			flags := cmd.Flags()
			run := cfg
			if !flags.Changed("in") {
				env, err := agentcard.SignConfigFromEnv(os.Getenv)
				if err != nil {
					return err
				}
				run.In = env.In
				if !flags.Changed("out") {
					run.Out = env.Out
				}
				if !flags.Changed("timeout") {
					run.Timeout = env.Timeout
				}
				if !flags.Changed("workload-api") && !flags.Changed("cert") && !flags.Changed("key") {
					run.WorkloadAPIAddr = env.WorkloadAPIAddr
				}
			} else if !flags.Changed("workload-api") && !flags.Changed("cert") && !flags.Changed("key") {
				// The Workload API's own convention: SPIFFE_ENDPOINT_SOCKET.
				if addr, ok := workloadapi.GetDefaultAddress(); ok {
					run.WorkloadAPIAddr = addr
				}
			}
			if validity > 0 {
				run.Options = append(run.Options, agentcard.WithValidity(validity))
			}
			if pss {
				run.Options = append(run.Options, agentcard.WithRSAPSS())
			}
			signed, info, err := agentcard.SignFile(cmd.Context(), run)
			if err != nil {
				return err
			}
			log.Info("signed agent card",
				"spiffe_id", info.SPIFFEID, "kid", info.KeyID, "alg", string(info.Algorithm),
				"exp", info.ExpiresAt.Format(time.RFC3339), "in", run.In, "out", run.Out)
			if run.Out == "" {
				_, err = cmd.OutOrStdout().Write(signed)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.In, "in", "", "unsigned card (JSON file)")
	f.StringVar(&cfg.Out, "out", "", "write the signed card here, atomically (default: stdout)")
	f.StringVar(&cfg.WorkloadAPIAddr, "workload-api", "", "SPIFFE Workload API address, e.g. unix:///run/spire/sockets/agent.sock")
	f.StringVar(&cfg.CertFile, "cert", "", "PEM X509-SVID certificate chain, leaf first")
	f.StringVar(&cfg.KeyFile, "key", "", "PEM private key of the SVID (PKCS#8, SEC 1 or PKCS#1)")
	f.DurationVar(&cfg.Timeout, "timeout", agentcard.DefaultSignTimeout, "give up after this long")
	f.DurationVar(&validity, "validity", 0, "signature lifetime (exp = iat + validity, at most the SVID's expiry; default: the SVID's expiry)")
	f.BoolVar(&pss, "pss", false, "sign RSA keys with PS256 instead of RS256")
	return cmd
}

func newCardVerifyCmd(g *globalFlags) *cobra.Command {
	var (
		bundle, trustDomain, expectID, pattern, at, compat, mtls string
		maxAge, skew, refresh, timeout                           time.Duration
		maxChain                                                 int
	)
	cmd := &cobra.Command{
		Use:   "verify --bundle FILE|URL|unix://SOCKET [--trust-domain TD] [--expect-id SPIFFE-ID] CARD-FILE|URL|-",
		Short: "Verify a signed AgentCard and bind its signer to a SPIFFE identity",
		Long: `Verify an AgentCard's signatures against SPIFFE trust bundles and bind the
signer's SPIFFE ID to the expected identity. Prints the result as JSON and
exits 0 only when a signature verified and its SPIFFE ID is bound.

The bundle is a SPIFFE bundle (JSON) or PEM file, an http(s) URL serving one
(both need --trust-domain), or a SPIFFE Workload API address, which gives
every trust domain the agent knows. The trust domain is the binding floor;
--expect-id or --expect-id-pattern narrow it to one workload, for example
spiffe://example.org/ns/agents/sa/weather.

A card URL without a path is an agent's base URL: the card is read from
/.well-known/agent-card.json, or /.well-known/agent.json on 404. With
--mtls-workload-api the fetch uses SPIFFE mTLS and the server's SPIFFE ID
must equal the card's signer.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := g.logger(cmd.ErrOrStderr()); err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()

			var td spiffeid.TrustDomain
			if trustDomain != "" {
				var err error
				if td, err = agentcard.ParseTrustDomain(trustDomain); err != nil {
					return err
				}
			}
			bundles, closeBundles, err := agentcard.OpenBundles(ctx, bundle, td, refresh)
			if err != nil {
				return err
			}
			defer closeBundles()

			opts := []agentcard.VerifierOption{
				agentcard.WithBinding(), agentcard.WithMaxAge(maxAge),
				agentcard.WithClockSkew(skew), agentcard.WithMaxChainLength(maxChain),
			}
			if !td.IsZero() {
				opts = append(opts, agentcard.WithTrustDomain(td))
			}
			if expectID != "" {
				id, err := spiffeid.FromString(expectID)
				if err != nil {
					return fmt.Errorf("--expect-id: %w", err)
				}
				opts = append(opts, agentcard.WithExpectedID(id))
			}
			if pattern != "" {
				opts = append(opts, agentcard.WithExpectedIDPattern(pattern))
			}
			if at != "" {
				t, err := time.Parse(time.RFC3339, at)
				if err != nil {
					return fmt.Errorf("--at: %w", err)
				}
				opts = append(opts, agentcard.WithTime(t))
			}
			switch compat {
			case "", "none":
			case "kagenti":
				opts = append(opts, agentcard.WithCompat(agentcard.CompatKagenti))
			default:
				return fmt.Errorf("--compat must be kagenti or none, not %q", compat)
			}
			v, err := agentcard.NewVerifier(bundles, opts...)
			if err != nil {
				return err
			}

			card, fetched, err := agentcard.ReadCard(ctx, args[0], agentcard.ReadOptions{
				Stdin: cmd.InOrStdin(), MTLSWorkloadAPI: mtls, Bundles: bundles,
			})
			if err != nil {
				return err
			}
			res, verr := v.Verify(card)
			if verr == nil && fetched != nil {
				verr = fetched.CheckSigner(res)
			}
			out := struct {
				*agentcard.Result
				Error string `json:"error,omitempty"`
			}{Result: res}
			if verr != nil {
				out.Error = verr.Error()
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			if err := enc.Encode(out); err != nil {
				return err
			}
			if verr != nil {
				return exitError{code: 1}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&bundle, "bundle", "", "trust bundle: SPIFFE JSON or PEM file, http(s) URL, or Workload API address (required)")
	f.StringVar(&trustDomain, "trust-domain", "", "trust domain of a file or URL bundle, and the binding floor")
	f.StringVar(&expectID, "expect-id", "", "bind to exactly this SPIFFE ID")
	f.StringVar(&pattern, "expect-id-pattern", "", "bind to SPIFFE IDs matching this pattern (* matches within one path segment)")
	f.DurationVar(&maxAge, "max-age", agentcard.DefaultMaxAge, "reject signatures whose iat is older (0: no limit)")
	f.DurationVar(&skew, "clock-skew", agentcard.DefaultClockSkew, "tolerance for iat in the future and exp in the past")
	f.IntVar(&maxChain, "max-chain", agentcard.DefaultMaxChainLength, "most certificates in x5c, leaf included")
	f.StringVar(&at, "at", "", "verify at this RFC 3339 time instead of now")
	f.StringVar(&compat, "compat", "", "also accept cards signed by another signer: kagenti")
	f.StringVar(&mtls, "mtls-workload-api", "", "fetch the card over SPIFFE mTLS with the SVID from this Workload API address")
	f.DurationVar(&refresh, "bundle-refresh", 5*time.Minute, "re-read a file or URL bundle at most this often")
	f.DurationVar(&timeout, "timeout", 30*time.Second, "give up after this long")
	_ = cmd.MarkFlagRequired("bundle")
	return cmd
}
