package server_test

import (
	"testing"

	"github.com/agentid/agentid/server"
)

const tokenCredential = "proxy-token-credential"

func TestTheTokenCredentialObtainsTokensButIsNoAdmin(t *testing.T) {
	ts := newTestServer(t, server.Config{AdminToken: []byte(adminToken), TokenCredential: []byte(tokenCredential)}, tenantPolicy("team-a", "read_file"))
	revoke := `{"type":"token","token_nonce":"00112233445566778899aabbccddeeff"}`
	for _, tc := range []struct {
		name, path, body, credential string
		status                       int
	}{
		{"a proxy's credential obtains a token", "/v1/token", `{` + binding + `}`, tokenCredential, 200},
		{"a proxy's credential cannot revoke", "/v1/revoke", revoke, tokenCredential, 401},
		{"the admin still obtains tokens", "/v1/token", `{` + binding + `}`, adminToken, 200},
		{"a wrong credential obtains nothing", "/v1/token", `{` + binding + `}`, tokenCredential + "x", 401},
	} {
		if r := ts.do(t, "POST", tc.path, tc.body, "Authorization: Bearer "+tc.credential); r.status != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, r.status, r.raw, tc.status)
		}
	}
}
