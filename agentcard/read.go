package agentcard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/workloadapi"

	"github.com/agentid/agentid/internal/readlimit"
)

// ReadOptions configures ReadCard.
type ReadOptions struct {
	// Stdin is read when the source is "-".
	Stdin io.Reader
	// MTLSWorkloadAPI, when set, fetches a card URL over SPIFFE mTLS with
	// this process's X509-SVID from the Workload API at this address; the
	// server must present an SVID that verifies to Bundles (see
	// FetchOptions). Only a URL can be read this way.
	MTLSWorkloadAPI string
	Bundles         x509bundle.Source
}

// ReadCard reads an AgentCard, not yet parsed or verified, from src: an
// http:// or https:// URL is fetched with FetchCard (an agent's base URL
// is read from its well-known path), "-" reads o.Stdin, anything else names
// a file. A card over MaxCardSize bytes is an error. For a URL it also
// returns what FetchCard returned, whose CheckSigner compares the server's
// SPIFFE ID with the card's signer after verification; otherwise nil.
func ReadCard(ctx context.Context, src string, o ReadOptions) ([]byte, *Fetched, error) {
	if strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://") {
		var fo FetchOptions
		if o.MTLSWorkloadAPI != "" {
			svids, err := workloadapi.NewX509Source(ctx, workloadapi.WithClientOptions(workloadapi.WithAddr(o.MTLSWorkloadAPI)))
			if err != nil {
				return nil, nil, fmt.Errorf("agentcard: X509-SVID for mTLS from the workload API at %s: %w", o.MTLSWorkloadAPI, err)
			}
			defer svids.Close()
			fo.SVIDs, fo.Bundles = svids, o.Bundles
		}
		f, err := FetchCard(ctx, src, fo)
		if err != nil {
			return nil, nil, err
		}
		return f.Card, f, nil
	}
	if o.MTLSWorkloadAPI != "" {
		return nil, nil, errors.New("agentcard: SPIFFE mTLS needs a card URL")
	}
	r := o.Stdin
	if src != "-" {
		file, err := os.Open(src)
		if err != nil {
			return nil, nil, err
		}
		defer file.Close()
		r = file
	} else if r == nil {
		return nil, nil, errors.New("agentcard: no standard input to read the card from")
	}
	data, err := readlimit.ReadAll(r, MaxCardSize)
	if err != nil {
		return nil, nil, fmt.Errorf("agentcard: card: %w", err)
	}
	return data, nil, nil
}
