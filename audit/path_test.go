package audit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDefaultPathIsUnderTheUsersStateDirectory(t *testing.T) {
	root := t.TempDir()
	for _, tt := range []struct {
		name, xdg, home string
		want            string // "" : an error containing wantErr
		wantErr         string
	}{
		{name: "XDG_STATE_HOME", xdg: filepath.Join(root, "state"), home: filepath.Join(root, "home"),
			want: filepath.Join(root, "state", "agentid", "audit.jsonl")},
		{name: "~/.local/state without XDG_STATE_HOME", home: filepath.Join(root, "home"),
			want: filepath.Join(root, "home", ".local", "state", "agentid", "audit.jsonl")},
		{name: "a relative XDG_STATE_HOME is an error, not a path in the working directory", xdg: "state", home: filepath.Join(root, "home"),
			wantErr: "XDG_STATE_HOME is relative"},
		{name: "no home and no XDG_STATE_HOME is an error, not a path in the working directory",
			wantErr: "no default log path"},
		{name: "a relative home is an error", home: "home", wantErr: "not absolute"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("XDG_STATE_HOME", tt.xdg)
			t.Setenv("HOME", tt.home)
			got, err := DefaultPath()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("DefaultPath() = %q, %v; want an error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("DefaultPath() = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestDefaultPathCreatesItsDirectoryPrivate(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	t.Setenv("XDG_STATE_HOME", state)
	p, err := DefaultPath()
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{state, filepath.Dir(p)} {
		fi, err := os.Stat(dir)
		if err != nil || fi.Mode().Perm() != 0o700 {
			t.Fatalf("%s: %v, %v; want a directory with mode 0700", dir, fi.Mode(), err)
		}
	}
	// The log itself is Open's to create, with mode 0600.
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatalf("DefaultPath created the log file: %v", err)
	}
	l, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
}

func TestDefaultPathReportsADirectoryItCannotCreate(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	t.Setenv("XDG_STATE_HOME", filepath.Join(file, "state"))
	if p, err := DefaultPath(); err == nil {
		t.Fatalf("DefaultPath() = %q under a regular file", p)
	}
}
