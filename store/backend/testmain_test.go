package backend_test

import (
	"os"
	"testing"

	"github.com/agentid/agentid/internal/testenv"
)

// TestMain stops the private Redis and PostgreSQL servers the tests
// started, and removes their data.
func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopServers()
	os.Exit(code)
}
