package agentcard

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/agentid/agentid/internal/strictjson"
	"github.com/agentid/agentid/internal/trusturl"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"

	"github.com/agentid/agentid/internal/readlimit"
)

// MaxBundleSize is the largest trust bundle document accepted, in bytes.
const MaxBundleSize = 4 << 20

// ParseBundle parses the X.509 authorities of trust domain td from a SPIFFE
// bundle (the JWKS that `spire-server bundle show -format spiffe` prints and
// SPIRE's BundlePublisher writes; only keys with use "x509-svid" count) or
// from PEM certificates (such as bundle.crt). The format is detected as
// Kagenti does: PEM if the text contains a PEM certificate block. A bundle
// without any X.509 authority is an error, as are duplicate JSON keys and
// authorities that are not CA certificates.
func ParseBundle(td spiffeid.TrustDomain, data []byte) (*x509bundle.Bundle, error) {
	if td.IsZero() {
		return nil, errors.New("agentcard: bundle: no trust domain")
	}
	if len(data) > MaxBundleSize {
		return nil, fmt.Errorf("agentcard: bundle: %d bytes, more than the %d allowed", len(data), MaxBundleSize)
	}
	var (
		authorities []*x509.Certificate
		format      string
	)
	if bytes.Contains(data, []byte("-----BEGIN CERTIFICATE-----")) {
		format = "PEM"
		var err error
		if authorities, err = parsePEMCertificates(data); err != nil {
			return nil, fmt.Errorf("agentcard: bundle: %w", err)
		}
	} else {
		format = "SPIFFE JSON"
		if err := strictjson.Validate(strictjson.JOSE, data); err != nil {
			return nil, fmt.Errorf("agentcard: bundle: failed to parse SPIFFE bundle JSON: %w", err)
		}
		b, err := spiffebundle.Parse(td, data)
		if err != nil {
			return nil, fmt.Errorf("agentcard: bundle: failed to parse SPIFFE bundle JSON: %w", err)
		}
		authorities = b.X509Authorities()
	}
	if len(authorities) == 0 {
		return nil, fmt.Errorf("agentcard: bundle: trust bundle contains no certificates (format: %s)", format)
	}
	for i, a := range authorities {
		if !a.IsCA || !a.BasicConstraintsValid {
			return nil, fmt.Errorf("agentcard: bundle: authority %d is not a CA certificate", i)
		}
	}
	return x509bundle.FromX509Authorities(td, authorities), nil
}

// parsePEMCertificates reads every CERTIFICATE block; any other block type,
// or text that is not PEM, is an error rather than silently skipped.
func parsePEMCertificates(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("unexpected PEM block %q", truncate(block.Type))
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("failed to parse certificate %d: %w", len(out), err)
		}
		out = append(out, c)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("trailing data after the PEM certificates")
	}
	return out, nil
}

// BundleLoader returns the current bytes of a bundle document.
type BundleLoader func(ctx context.Context) ([]byte, error)

// FileBundleLoader reads a bundle from a file, such as a mounted ConfigMap.
func FileBundleLoader(path string) BundleLoader {
	return func(context.Context) ([]byte, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return readlimit.ReadAll(f, MaxBundleSize)
	}
}

// URLBundleLoader fetches a bundle over HTTP(S), as served by a SPIFFE
// bundle endpoint with web PKI or any static file server. client nil means a
// client with a 10 s timeout that follows no redirects.
func URLBundleLoader(url string, client *http.Client) BundleLoader {
	if client == nil {
		client = &http.Client{
			Timeout:       10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return func(ctx context.Context) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", "application/json, application/x-pem-file")
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
		}
		return readlimit.ReadAll(resp.Body, MaxBundleSize)
	}
}

// ReloadingBundle is the trust bundle of one trust domain, read through a
// BundleLoader and re-read when it may have changed: at most once per
// refresh interval, on the first lookup after the interval has passed. The
// bundle is replaced only when its bytes change and the new bytes parse; a
// failed reload keeps the last good bundle (a trust-bundle outage must not
// revoke every card at once) and is reported by LastError. It implements
// x509bundle.Source and is safe for concurrent use.
type ReloadingBundle struct {
	td      spiffeid.TrustDomain
	load    BundleLoader
	refresh time.Duration
	now     func() time.Time

	mu        sync.Mutex
	bundle    *x509bundle.Bundle
	digest    [32]byte
	loadedAt  time.Time
	lastErr   error
	reloading bool
}

// NewReloadingBundle loads the bundle once, failing if that load fails, and
// returns a source that re-reads it at most every refresh (Kagenti's
// --spire-trust-bundle-refresh-interval; 0 means 5 minutes).
func NewReloadingBundle(ctx context.Context, td spiffeid.TrustDomain, load BundleLoader, refresh time.Duration) (*ReloadingBundle, error) {
	if refresh <= 0 {
		refresh = 5 * time.Minute
	}
	r := &ReloadingBundle{td: td, load: load, refresh: refresh, now: time.Now}
	if err := r.Reload(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// Reload reads the bundle now. It returns the load or parse error, if any,
// and keeps the previous bundle in that case.
func (r *ReloadingBundle) Reload(ctx context.Context) error {
	r.mu.Lock()
	r.loadedAt = r.now()
	r.mu.Unlock()
	return r.reload(ctx)
}

// reload loads and parses without holding the lock, so that lookups keep
// using the current bundle while a slow URL is fetched.
func (r *ReloadingBundle) reload(ctx context.Context) error {
	data, err := r.load(ctx)
	var (
		b *x509bundle.Bundle
		d [32]byte
	)
	if err == nil {
		d = sha256.Sum256(data)
		r.mu.Lock()
		same := r.bundle != nil && d == r.digest
		r.mu.Unlock()
		if !same {
			b, err = ParseBundle(r.td, data)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reloading = false
	if err != nil {
		r.lastErr = fmt.Errorf("agentcard: trust bundle unavailable: %w", err)
		return r.lastErr
	}
	if b != nil {
		r.bundle, r.digest = b, d
	}
	r.lastErr = nil
	return nil
}

// GetX509BundleForTrustDomain implements x509bundle.Source. The first lookup
// after the refresh interval reloads the bundle; concurrent lookups do not
// wait for it and get the current bundle.
func (r *ReloadingBundle) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	if td != r.td {
		return nil, fmt.Errorf("agentcard: no trust bundle for trust domain %q", td.Name())
	}
	r.mu.Lock()
	due := !r.reloading && r.now().Sub(r.loadedAt) >= r.refresh
	if due {
		r.reloading = true
		r.loadedAt = r.now()
	}
	r.mu.Unlock()
	if due {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = r.reload(ctx) // keeps the last good bundle on failure
		cancel()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.bundle == nil {
		return nil, r.lastErr
	}
	return r.bundle, nil
}

// Digest returns the SHA-256 of the bundle bytes currently in use. Unlike
// Kagenti's hash of the raw ConfigMap text, it changes only when the loaded
// document changes and parses.
func (r *ReloadingBundle) Digest() [32]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.digest
}

// LastError returns the error of the most recent reload, or nil.
func (r *ReloadingBundle) LastError() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastErr
}

// Bundles is a set of per-trust-domain bundle sources: a leaf is only ever
// checked against the source of its own trust domain. It implements
// x509bundle.Source.
type Bundles struct {
	mu      sync.RWMutex
	sources map[spiffeid.TrustDomain]x509bundle.Source
}

// NewBundles returns an empty set.
func NewBundles() *Bundles {
	return &Bundles{sources: map[spiffeid.TrustDomain]x509bundle.Source{}}
}

// Add sets the source for trust domain td, replacing any previous one.
// A go-spiffe *x509bundle.Bundle, a *ReloadingBundle or a Workload API
// *workloadapi.BundleSource all fit.
func (b *Bundles) Add(td spiffeid.TrustDomain, src x509bundle.Source) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sources[td] = src
}

// GetX509BundleForTrustDomain implements x509bundle.Source.
func (b *Bundles) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	b.mu.RLock()
	src, ok := b.sources[td]
	b.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("agentcard: no trust bundle for trust domain %q", td.Name())
	}
	return src.GetX509BundleForTrustDomain(td)
}

// OpenBundles returns the bundle source that location names, and a function
// that releases it:
//   - a SPIFFE Workload API address ("unix:///path" or "tcp://ip:port"): every
//     trust domain the agent serves, its own and federated ones, kept current
//     by the Workload API's update stream;
//   - an https:// URL (http:// only to a loopback IP address), or a file
//     path: the bundle of trust domain td (SPIFFE JSON or PEM), re-read at
//     most every refresh.
func OpenBundles(ctx context.Context, location string, td spiffeid.TrustDomain, refresh time.Duration) (x509bundle.Source, func() error, error) {
	nop := func() error { return nil }
	switch {
	case strings.HasPrefix(location, "unix:") || strings.HasPrefix(location, "tcp:"):
		if err := workloadapi.ValidateAddress(location); err != nil {
			return nil, nil, fmt.Errorf("agentcard: workload API address: %w", err)
		}
		src, err := watchWorkloadAPIBundles(ctx, location)
		if err != nil {
			return nil, nil, fmt.Errorf("agentcard: trust bundles from the workload API at %s: %w", location, err)
		}
		return src, src.close, nil
	case location == "":
		return nil, nil, errors.New("agentcard: no trust bundle location")
	}
	if td.IsZero() {
		return nil, nil, errors.New("agentcard: a trust domain is needed to load a bundle file or URL")
	}
	load := FileBundleLoader(location)
	if strings.Contains(location, "://") {
		// A trust bundle is the root of trust: fetched only over https, or
		// from a loopback address (internal/trusturl).
		if _, err := trusturl.Check(location); err != nil {
			return nil, nil, fmt.Errorf("agentcard: trust bundle URL: %w", err)
		}
		load = URLBundleLoader(location, nil)
	}
	rb, err := NewReloadingBundle(ctx, td, load, refresh)
	if err != nil {
		return nil, nil, err
	}
	return rb, nop, nil
}

// workloadAPIBundles holds the X.509 bundles that the Workload API's
// FetchX509Bundles stream delivers, replaced on every update. Unlike
// go-spiffe's BundleSource it needs neither an SVID for the caller nor the
// JWT bundle stream: a verifier only needs bundles.
type workloadAPIBundles struct {
	mu     sync.RWMutex
	set    *x509bundle.Set
	cancel context.CancelFunc
	done   chan struct{}
	first  chan struct{}
	once   sync.Once
	err    error
}

func watchWorkloadAPIBundles(ctx context.Context, addr string) (*workloadAPIBundles, error) {
	wctx, cancel := context.WithCancel(context.Background())
	w := &workloadAPIBundles{cancel: cancel, done: make(chan struct{}), first: make(chan struct{})}
	go func() {
		defer close(w.done)
		err := workloadapi.WatchX509Bundles(wctx, w, workloadapi.WithAddr(addr))
		w.once.Do(func() { w.err = err; close(w.first) })
	}()
	select {
	case <-w.first:
		if w.err != nil {
			w.close()
			return nil, w.err
		}
		return w, nil
	case <-ctx.Done():
		w.close()
		return nil, ctx.Err()
	}
}

// OnX509BundlesUpdate implements workloadapi.X509BundleWatcher.
func (w *workloadAPIBundles) OnX509BundlesUpdate(set *x509bundle.Set) {
	w.mu.Lock()
	w.set = set
	w.mu.Unlock()
	w.once.Do(func() { close(w.first) })
}

// OnX509BundlesWatchError implements workloadapi.X509BundleWatcher. The
// watch retries by itself; the last good bundles stay in use meanwhile.
func (w *workloadAPIBundles) OnX509BundlesWatchError(error) {}

func (w *workloadAPIBundles) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.set == nil {
		return nil, errors.New("agentcard: no trust bundles from the workload API yet")
	}
	return w.set.GetX509BundleForTrustDomain(td)
}

func (w *workloadAPIBundles) close() error {
	w.cancel()
	<-w.done
	return nil
}
