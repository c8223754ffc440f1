package agentcard

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agentid/agentid/internal/testenv"
)

// The SPIRE integration test runs a real spire-server and spire-agent
// (v1.13.3, built by scripts/ensure-spire.sh) on loopback and unix sockets.
// The signer gets a real X509-SVID over the Workload API, and the verifier
// trusts the bundle that `spire-server bundle show -format spiffe` prints.
func TestSPIRE(t *testing.T) {
	if testing.Short() {
		t.Skip("starts SPIRE; skipped with -short")
	}
	const td = "example.org"
	const workloadID = "spiffe://example.org/ns/agents/sa/weather"
	server := testenv.StartSPIREServer(t, td)
	addr := server.StartAgent(t)
	server.CreateEntry(t, workloadID)

	// The agent picks the new entry up on its next sync (every few
	// seconds); until then the Workload API has no identity for us.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		svid, err := FetchSVID(ctx, addr)
		if err == nil {
			ZeroKey(svid.PrivateKey)
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no SVID from the SPIRE agent within 60s: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
	}

	dir := t.TempDir()
	unsigned := filepath.Join(dir, "agent.json")
	if err := os.WriteFile(unsigned, baseCard, 0o644); err != nil {
		t.Fatal(err)
	}
	bundlePath := filepath.Join(dir, "bundle.spiffe")
	if err := os.WriteFile(bundlePath, server.Bundle(t), 0o644); err != nil {
		t.Fatal(err)
	}
	exampleTD := spiffeid.RequireTrustDomainFromString(td)
	bundles, closeBundles, err := OpenBundles(ctx, bundlePath, exampleTD, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer closeBundles()

	t.Run("a card signed with the Workload API SVID verifies against the SPIRE bundle", func(t *testing.T) {
		out := filepath.Join(dir, "signed", "agent-card.json")
		_, info, err := SignFile(ctx, SignConfig{In: unsigned, Out: out, WorkloadAPIAddr: addr, Timeout: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if info.SPIFFEID != workloadID || info.Algorithm != ES256 {
			t.Fatalf("%+v", info)
		}
		signed, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		expected, _ := KubernetesID(exampleTD, "agents", "weather")
		v, err := NewVerifier(bundles, WithExpectedID(expected))
		if err != nil {
			t.Fatal(err)
		}
		res, err := v.Verify(signed)
		if err != nil {
			t.Fatalf("%v\n%+v", err, res)
		}
		if res.SPIFFEID != workloadID || !res.Binding.Bound || res.LeafNotAfter.Before(time.Now()) {
			t.Fatalf("%+v", res)
		}
		// The SPIRE agent also serves the bundle; trusting that instead of
		// the file gives the same answer.
		apiBundles, closeAPI, err := OpenBundles(ctx, addr, spiffeid.TrustDomain{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer closeAPI()
		v2, _ := NewVerifier(apiBundles, WithTrustDomain(exampleTD))
		if _, err := v2.Verify(signed); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("an SVID minted for another trust domain is rejected", func(t *testing.T) {
		other := testenv.StartSPIREServer(t, "other.org")
		mintDir := other.MintFiles(t, "spiffe://other.org/ns/agents/sa/weather", time.Hour)
		_, info, err := SignFile(ctx, SignConfig{
			In: unsigned, Out: filepath.Join(dir, "other.json"),
			CertFile: filepath.Join(mintDir, "svid.pem"), KeyFile: filepath.Join(mintDir, "key.pem"),
		})
		if err != nil {
			t.Fatal(err)
		}
		if info.SPIFFEID != "spiffe://other.org/ns/agents/sa/weather" {
			t.Fatalf("%+v", info)
		}
		signed, _ := os.ReadFile(filepath.Join(dir, "other.json"))

		// Only example.org is trusted: no bundle for other.org.
		v, _ := NewVerifier(bundles, WithTrustDomain(exampleTD))
		res, err := v.Verify(signed)
		if !errors.Is(err, ErrNotVerified) || res.Signatures[0].Reason != ReasonUnknownTrustDomain {
			t.Fatalf("%v %+v", err, res)
		}

		// other.org's real bundle is trusted too (federation), but the
		// binding floor is example.org: verified, not bound.
		otherBundlePath := filepath.Join(dir, "other.spiffe")
		os.WriteFile(otherBundlePath, other.Bundle(t), 0o644)
		otherTD := spiffeid.RequireTrustDomainFromString("other.org")
		otherBundle, closeOther, err := OpenBundles(ctx, otherBundlePath, otherTD, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer closeOther()
		set := NewBundles()
		set.Add(exampleTD, bundles)
		set.Add(otherTD, otherBundle)
		v, _ = NewVerifier(set, WithTrustDomain(exampleTD))
		res, err = v.Verify(signed)
		if !errors.Is(err, ErrNotBound) || !res.Verified || res.Binding.Message !=
			"SPIFFE ID spiffe://other.org/ns/agents/sa/weather does not belong to trust domain example.org" {
			t.Fatalf("%v %+v", err, res.Binding)
		}

		// other.org's CA placed under example.org's name does not make its
		// SVIDs example.org's: the leaf's trust domain picks the bundle.
		misfiled := filepath.Join(dir, "misfiled.spiffe")
		os.WriteFile(misfiled, other.Bundle(t), 0o644)
		wrong, closeWrong, err := OpenBundles(ctx, misfiled, exampleTD, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer closeWrong()
		v, _ = NewVerifier(wrong, WithTrustDomain(exampleTD))
		if res, err := v.Verify(signed); err == nil || res.Signatures[0].Reason != ReasonUnknownTrustDomain {
			t.Fatalf("%v %+v", err, res)
		}
	})
}
