package agentcard

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"

	"github.com/agentid/agentid/internal/atomicfile"
	"github.com/agentid/agentid/internal/pemkey"
	"github.com/agentid/agentid/internal/readlimit"
)

// The Kagenti signer init-container's environment variables and defaults.
// `agentid card sign` run without --in reads them, so that it replaces the
// Kagenti signer image without changing a pod spec.
const (
	EnvSocket       = "SPIFFE_ENDPOINT_SOCKET"
	EnvUnsignedCard = "UNSIGNED_CARD_PATH"
	EnvSignedCard   = "AGENT_CARD_PATH"
	EnvSignTimeout  = "SIGN_TIMEOUT"

	DefaultSocket       = "unix:///run/spire/sockets/agent.sock"
	DefaultUnsignedCard = "/etc/agentcard/agent.json"
	DefaultSignedCard   = "/app/.well-known/agent-card.json"
	DefaultSignTimeout  = 30 * time.Second
)

// SignConfig says what SignFile reads, where its SVID comes from and where
// it writes.
type SignConfig struct {
	// In is the unsigned card's path.
	In string
	// Out is where the signed card is written atomically (directories
	// created 0755, file 0644, as Kagenti does); "" writes nothing and
	// SignFile only returns the card.
	Out string
	// WorkloadAPIAddr is the SPIFFE Workload API address
	// ("unix:///path" or "tcp://ip:port"). Exactly one of WorkloadAPIAddr
	// and CertFile/KeyFile must be set.
	WorkloadAPIAddr string
	// CertFile holds the PEM certificate chain, leaf first; KeyFile the PEM
	// private key (PKCS#8, SEC 1 or PKCS#1, unencrypted).
	CertFile, KeyFile string
	// Timeout bounds the whole run; 0 means DefaultSignTimeout.
	Timeout time.Duration
	// Options are passed to Sign.
	Options []SignOption
}

// SignConfigFromEnv returns the Kagenti init-container configuration: each
// value from its environment variable, or Kagenti's default.
func SignConfigFromEnv(getenv func(string) string) (SignConfig, error) {
	cfg := SignConfig{
		In:              envOr(getenv, EnvUnsignedCard, DefaultUnsignedCard),
		Out:             envOr(getenv, EnvSignedCard, DefaultSignedCard),
		WorkloadAPIAddr: envOr(getenv, EnvSocket, DefaultSocket),
		Timeout:         DefaultSignTimeout,
	}
	if v := getenv(EnvSignTimeout); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return SignConfig{}, fmt.Errorf("agentcard: %s=%q is not a positive duration", EnvSignTimeout, v)
		}
		cfg.Timeout = d
	}
	return cfg, nil
}

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

// SignFile reads the unsigned card, gets the SVID (from the Workload API or
// from files), signs, zeroes the private key, and writes the signed card to
// cfg.Out if set. It returns the signed card and what was signed with.
func SignFile(ctx context.Context, cfg SignConfig) ([]byte, *SignInfo, error) {
	fromAPI := cfg.WorkloadAPIAddr != ""
	fromFiles := cfg.CertFile != "" || cfg.KeyFile != ""
	switch {
	case cfg.In == "":
		return nil, nil, errors.New("agentcard: sign: no input card")
	case fromAPI == fromFiles:
		return nil, nil, errors.New("agentcard: sign: give either a Workload API address or a certificate and key")
	case fromFiles && (cfg.CertFile == "" || cfg.KeyFile == ""):
		return nil, nil, errors.New("agentcard: sign: both a certificate and a key file are needed")
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultSignTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	card, err := readlimit.ReadFile(cfg.In, MaxCardSize)
	if err != nil {
		return nil, nil, fmt.Errorf("agentcard: sign: reading the card: %w", err)
	}
	// Reject a bad card before asking anyone for a key.
	if _, err := ParseCard(card); err != nil {
		return nil, nil, err
	}

	var svid *x509svid.SVID
	if fromAPI {
		svid, err = FetchSVID(ctx, cfg.WorkloadAPIAddr)
	} else {
		svid, err = LoadSVID(cfg.CertFile, cfg.KeyFile)
	}
	if err != nil {
		return nil, nil, err
	}
	signed, info, err := SignWithSVID(card, svid, cfg.Options...)
	ZeroKey(svid.PrivateKey)
	svid.PrivateKey = nil
	if err != nil {
		return nil, nil, err
	}
	if cfg.Out != "" {
		if err := atomicfile.Write(cfg.Out, signed, 0o644, atomicfile.Options{DirPerm: 0o755}); err != nil {
			return nil, nil, fmt.Errorf("agentcard: %w", err)
		}
	}
	return signed, info, nil
}

// FetchSVID fetches the default X509-SVID from the SPIFFE Workload API at
// addr, waiting (within ctx) for the agent to issue one, as the Kagenti
// signer does.
func FetchSVID(ctx context.Context, addr string) (*x509svid.SVID, error) {
	if err := workloadapi.ValidateAddress(addr); err != nil {
		return nil, fmt.Errorf("agentcard: workload API address: %w", err)
	}
	svid, err := workloadapi.FetchX509SVID(ctx, workloadapi.WithAddr(addr))
	if err != nil {
		return nil, fmt.Errorf("agentcard: fetching the X509-SVID from %s: %w", addr, err)
	}
	return svid, nil
}

// LoadSVID loads an X509-SVID from a PEM certificate chain (leaf first) and
// a PEM private key, such as `spire-server x509 mint` or
// `spire-agent api fetch x509 -write` produce. Encrypted keys are refused.
func LoadSVID(certFile, keyFile string) (*x509svid.SVID, error) {
	certPEM, err := readlimit.ReadFile(certFile, 1<<20)
	if err != nil {
		return nil, fmt.Errorf("agentcard: reading the certificate: %w", err)
	}
	certs, err := parsePEMCertificates(certPEM)
	if err != nil {
		return nil, fmt.Errorf("agentcard: %s: %w", certFile, err)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("agentcard: %s: no certificate", certFile)
	}
	keyPEM, err := readlimit.ReadFile(keyFile, 1<<20)
	if err != nil {
		return nil, fmt.Errorf("agentcard: reading the key: %w", err)
	}
	key, err := pemkey.ParseSinglePrivateKey(keyPEM)
	clear(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("agentcard: %s: %w", keyFile, err)
	}
	id, err := x509svid.IDFromCert(certs[0])
	if err != nil {
		ZeroKey(key)
		return nil, fmt.Errorf("agentcard: %s: leaf is not an X509-SVID: %w", certFile, err)
	}
	return &x509svid.SVID{ID: id, Certificates: certs, PrivateKey: key}, nil
}

// ParseTrustDomain parses a trust domain name or a spiffe:// trust domain ID.
func ParseTrustDomain(s string) (spiffeid.TrustDomain, error) {
	td, err := spiffeid.TrustDomainFromString(s)
	if err != nil {
		return spiffeid.TrustDomain{}, fmt.Errorf("agentcard: trust domain %q: %w", truncate(s), err)
	}
	return td, nil
}
