package readlimit_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentid/agentid/internal/readlimit"
)

func TestReadAllAcceptsUpToTheLimitAndRefusesMore(t *testing.T) {
	for _, tt := range []struct {
		name string
		size int
		ok   bool
	}{
		{"empty", 0, true},
		{"below", 9, true},
		{"exactly the limit", 10, true},
		{"one byte over", 11, false},
		{"far over", 1 << 20, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			data, err := readlimit.ReadAll(strings.NewReader(strings.Repeat("x", tt.size)), 10)
			if tt.ok {
				if err != nil || len(data) != tt.size {
					t.Fatalf("= %d bytes, %v", len(data), err)
				}
				return
			}
			var tl *readlimit.TooLargeError
			if !errors.As(err, &tl) || tl.Max != 10 || err.Error() != "more than 10 bytes" || data != nil {
				t.Fatalf("= %d bytes, %v; want a TooLargeError", len(data), err)
			}
		})
	}
}

func TestReadAllStopsReadingAfterTheLimit(t *testing.T) {
	f, err := os.Open("/dev/zero")
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	if _, err := readlimit.ReadAll(f, 1<<10); err == nil {
		t.Fatal("an endless input was accepted")
	}
}

func TestReadFileNamesTheFileInItsErrors(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	os.WriteFile(big, []byte("0123456789x"), 0o600)
	if _, err := readlimit.ReadFile(big, 10); err == nil || err.Error() != "read "+big+": more than 10 bytes" {
		t.Fatalf("err = %v", err)
	}
	if _, err := readlimit.ReadFile(filepath.Join(dir, "missing"), 10); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v", err)
	}
	if data, err := readlimit.ReadFile(big, 11); err != nil || string(data) != "0123456789x" {
		t.Fatalf("= %q, %v", data, err)
	}
}
