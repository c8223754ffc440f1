package trusturl

import "testing"

func TestTrustMaterialComesOverHTTPSOrFromALoopbackAddress(t *testing.T) {
	for raw, ok := range map[string]bool{
		"https://example.com/bundle.json": true,
		"https://10.0.0.1:8443/jwks":      true,
		"http://127.0.0.1:8080/bundle":    true,
		"http://127.9.9.9/bundle":         true,
		"http://[::1]:8080/jwks":          true,
		"http://example.com/bundle":       false,
		"http://localhost/bundle":         false, // a name, resolved by whoever answers
		"http://10.0.0.1/bundle":          false,
		"ftp://127.0.0.1/bundle":          false,
		"file:///etc/bundle":              false,
		"https:///nohost":                 false,
		"://bad":                          false,
	} {
		if _, err := Check(raw); (err == nil) != ok {
			t.Errorf("Check(%q) = %v, want ok %v", raw, err, ok)
		}
	}
}
