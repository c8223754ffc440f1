package server

import "testing"

func TestAListenerWithoutTLSMustBeBoundToLoopbackWhateverItsNameResolvedTo(t *testing.T) {
	for _, tc := range []struct {
		addr         string
		tls          bool
		ok, loopback bool
	}{
		{"127.0.0.1:0", false, true, true},
		{"localhost:0", false, true, true}, // 127.0.0.1 in this machine's /etc/hosts
		{":0", false, false, false},        // every interface
		{"0.0.0.0:0", false, false, false},
		{":0", true, true, false}, // with TLS, and then authentication required
	} {
		ln, loopback, err := listen(tc.addr, tc.tls)
		if ln != nil {
			ln.Close()
		}
		if (err == nil) != tc.ok || loopback != tc.loopback {
			t.Errorf("listen(%q, tls %v) = loopback %v, %v; want ok %v, loopback %v", tc.addr, tc.tls, loopback, err, tc.ok, tc.loopback)
		}
	}
}
