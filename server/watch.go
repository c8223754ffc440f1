package server

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"time"
)

// WatchPolicies reloads the policies (Reload) whenever one of their files
// changes, checking every interval until ctx is done. A reload that fails
// keeps the policies in force (see Reload).
func (s *Server) WatchPolicies(ctx context.Context, interval time.Duration) {
	last := s.policyStamp()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := s.policyStamp()
		if now == last {
			continue
		}
		last = now
		if err := s.Reload(); err == nil {
			s.cfg.Log.Info("policies reloaded after a file change", "policy_hashes", s.PolicyHashes())
		}
	}
}

// policyStamp identifies the current contents of the policy files by
// modification time and size.
func (s *Server) policyStamp() string {
	var b bytes.Buffer
	for _, t := range s.tenants.Load().list {
		p := t.core.Policy().Path()
		if fi, err := os.Stat(p); err == nil {
			fmt.Fprintf(&b, "%s %d %d;", p, fi.ModTime().UnixNano(), fi.Size())
		} else {
			fmt.Fprintf(&b, "%s missing;", p)
		}
	}
	return b.String()
}

// ReadAdminToken reads the admin credential from path: its contents without
// surrounding whitespace, at least 16 bytes. Like an SSH key, a file that
// others may read is refused.
func ReadAdminToken(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("server: admin token: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("server: admin token file %s is readable by others (mode %v); chmod 600 it", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("server: admin token: %w", err)
	}
	b = bytes.TrimSpace(b)
	if len(b) < 16 {
		return nil, fmt.Errorf("server: admin token in %s is shorter than 16 bytes", path)
	}
	return b, nil
}
