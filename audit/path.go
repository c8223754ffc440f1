package audit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// DefaultPath returns the audit log's default path,
// $XDG_STATE_HOME/agentid/audit.jsonl, or ~/.local/state/agentid/audit.jsonl
// when XDG_STATE_HOME is unset or empty: under the user's state directory,
// outside any project directory an agent is likely to be given. It creates
// the agentid directory (and missing parents) with mode 0700.
//
// It returns an error, never a relative path, when neither directory can be
// named: XDG_STATE_HOME set to a relative path (the XDG Base Directory
// specification makes such a value invalid, and os.UserCacheDir rejects it
// alike) or no home directory. A relative default would put the log in the
// current directory, which is usually the one the agent works in. It also
// returns the error of creating the directory.
func DefaultPath() (string, error) {
	dir := os.Getenv("XDG_STATE_HOME")
	switch {
	case dir == "":
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("audit: no default log path (%v); give the log file explicitly", err)
		}
		if !filepath.IsAbs(home) {
			return "", fmt.Errorf("audit: no default log path: home directory %q is not absolute; give the log file explicitly", home)
		}
		dir = filepath.Join(home, ".local", "state")
	case !filepath.IsAbs(dir):
		return "", errors.New("audit: no default log path: $XDG_STATE_HOME is relative; give the log file explicitly")
	}
	dir = filepath.Join(dir, "agentid")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("audit: %w", err)
	}
	return filepath.Join(dir, "audit.jsonl"), nil
}
