package main

import (
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/agentid/agentid/enforce"
	"github.com/agentid/agentid/identity"
	"github.com/agentid/agentid/server"
)

// remoteFlags are the proxy's flags for deciding through a validation
// server (agentid proxy --server URL).
type remoteFlags struct {
	url, ca, cert, key, credentialFile, policy string
}

func (r *remoteFlags) register(f *pflag.FlagSet) {
	f.StringVar(&r.url, "server", "", "validation server URL (agentid serve): tool calls are decided there; failover_mode applies when it cannot answer")
	f.StringVar(&r.ca, "server-ca", "", "CA certificates (PEM) that verify the validation server (default: the system's)")
	f.StringVar(&r.cert, "server-cert", "", "client certificate (PEM) for mTLS to the validation server")
	f.StringVar(&r.key, "server-key", "", "client key (PEM) for --server-cert")
	f.StringVar(&r.credentialFile, "server-credential-file", "", "file holding the credential for the server's /v1/token (its --token-credential-file), when no client certificate identifies this proxy")
	f.StringVar(&r.policy, "server-policy", "", "the server's policy (tenant) to obtain tokens for, when it serves several")
}

// client is the validation server client, nil without --server.
func (r *remoteFlags) client(p *enforce.Policy) (*server.Client, error) {
	if r.url == "" {
		return nil, nil
	}
	tlsCfg, err := server.ClientTLS(r.ca, r.cert, r.key)
	if err != nil {
		return nil, err
	}
	var credential string
	if r.credentialFile != "" {
		b, err := server.ReadAdminToken(r.credentialFile)
		if err != nil {
			return nil, err
		}
		credential = strings.TrimSpace(string(b))
	}
	path, _ := filepath.Abs(p.Path())
	sc := p.Server
	return server.NewClient(server.ClientConfig{
		URL: r.url, Timeout: sc.Timeout, TLS: tlsCfg, Credential: credential, Policy: r.policy,
		Binding: identity.CurrentBinding(path), ValidatePath: sc.Endpoints.Validate,
	})
}

// remoteOf keeps a nil client a nil interface.
func remoteOf(c *server.Client) enforce.Remote {
	if c == nil {
		return nil
	}
	return c
}
