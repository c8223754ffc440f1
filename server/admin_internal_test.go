package server

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net/http/httptest"
	"net/url"
	"testing"
)

func TestAnAdminIdentityMatchesOnlyTheCertificateFieldOfItsKind(t *testing.T) {
	s := &Server{cfg: Config{AdminIdentities: []string{"spiffe://example.org/admin", "urn:example:admin", "ops-admin"}}}
	cert := func(cn string, uris ...string) *x509.Certificate {
		c := &x509.Certificate{Subject: pkix.Name{CommonName: cn}}
		for _, u := range uris {
			p, err := url.Parse(u)
			if err != nil {
				t.Fatal(err)
			}
			c.URIs = append(c.URIs, p)
		}
		return c
	}
	for _, tc := range []struct {
		name  string
		cert  *x509.Certificate
		admin bool
	}{
		{"the admin's URI SAN", cert("whoever", "spiffe://example.org/admin"), true},
		{"the admin's common name", cert("ops-admin"), true},
		// A CA that lets workloads choose their common name (or sets it
		// from a DNS name) must not thereby make them the SPIFFE admin.
		{"the admin's URI as a common name", cert("spiffe://example.org/admin", "spiffe://example.org/agent"), false},
		{"the admin's URI as the only common name", cert("spiffe://example.org/admin"), false},
		{"a URN admin as a common name", cert("urn:example:admin"), false},
		{"a URN admin as a URI SAN", cert("x", "urn:example:admin"), true},
		{"another workload", cert("agent", "spiffe://example.org/agent"), false},
	} {
		r := httptest.NewRequest("POST", "/v1/revoke", nil)
		r.TLS = &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{tc.cert}}}
		if _, ok := s.admin(r); ok != tc.admin {
			t.Errorf("%s: admin %v, want %v", tc.name, ok, tc.admin)
		}
	}
}
