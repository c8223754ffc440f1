package testenv

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// PostgresUser is the superuser of the private PostgreSQL servers; they
// trust every local connection, so it needs no password.
const PostgresUser = "agentid"

// Postgres returns the PostgreSQL server this test process shares across
// its tests, started on first use: a fresh cluster (initdb) on a free
// loopback port, with trust authentication, its unix socket inside its data
// directory, and durability switched off (fsync) for speed; a clean Stop
// still keeps every committed row. URL names the database "postgres"; tests
// that need a database of their own create one. A missing PostgreSQL
// follows RequireComponent's rule. Call StopServers from TestMain to remove
// it when the tests end.
//
// PostgreSQL refuses to run as root: when the tests do, initdb and postgres
// run as the "postgres" user (the Debian package creates it).
func Postgres(t testing.TB) *Server {
	t.Helper()
	bins, err := postgresBinaries()
	return requireServer(t, "PostgreSQL (initdb, postgres)", err, func() (*Server, error) {
		return sharedServerOf("postgres", func() (*Server, error) { return startPostgres(bins) })
	})
}

// NewPostgres starts a PostgreSQL server of the test's own, for tests that
// stop and restart it; it is removed when the test ends.
func NewPostgres(t testing.TB) *Server {
	t.Helper()
	bins, err := postgresBinaries()
	s := requireServer(t, "PostgreSQL (initdb, postgres)", err, func() (*Server, error) { return startPostgres(bins) })
	t.Cleanup(s.Close)
	return s
}

type pgBinaries struct {
	initdb, postgres string
	cred             *syscall.Credential // nil unless running as root
}

// postgresBinaries finds initdb and postgres from one installation: on PATH
// first, else the newest /usr/lib/postgresql/*/bin (Debian does not put
// them on PATH).
func postgresBinaries() (pgBinaries, error) {
	var b pgBinaries
	var dirs []string
	if p, err := exec.LookPath("postgres"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			dirs = append(dirs, filepath.Dir(real))
		}
		dirs = append(dirs, filepath.Dir(p))
	}
	installed, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(installed, func(i, j int) bool { return pgVersion(installed[i]) > pgVersion(installed[j]) })
	dirs = append(dirs, installed...)
	for _, d := range dirs {
		initdb, postgres := filepath.Join(d, "initdb"), filepath.Join(d, "postgres")
		if isExecutable(initdb) && isExecutable(postgres) {
			b.initdb, b.postgres = initdb, postgres
			break
		}
	}
	if b.postgres == "" {
		return b, errors.New("initdb and postgres not found on PATH or in /usr/lib/postgresql/*/bin")
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return b, fmt.Errorf("running as root, PostgreSQL needs the postgres user: %v", err)
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		b.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	return b, nil
}

func pgVersion(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

func startPostgres(b pgBinaries) (*Server, error) {
	dir, err := newServerDir("postgres")
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		return nil, err
	}
	if b.cred != nil {
		if err := os.Chown(data, int(b.cred.Uid), int(b.cred.Gid)); err != nil {
			return nil, err
		}
	}
	initdb := exec.Command(b.initdb, "-D", data, "-U", PostgresUser, "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	initdb.Dir = dir
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: b.cred, Pdeathsig: syscall.SIGKILL}
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	var lastErr error
	for range 3 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s := &Server{
			URL:  fmt.Sprintf("postgres://%s@127.0.0.1:%d/postgres?sslmode=disable", PostgresUser, port),
			Port: port,
			name: "postgres",
			dir:  dir,
			log:  filepath.Join(dir, "postgres.log"),
			argv: []string{b.postgres, "-D", data, "-p", strconv.Itoa(port),
				"-c", "listen_addresses=127.0.0.1",
				"-c", "unix_socket_directories=" + data,
				"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
				"-c", "shared_buffers=16MB", "-c", "max_connections=200",
			},
			cred:  b.cred,
			ready: postgresReady,
		}
		s.mu.Lock()
		lastErr = s.startLocked()
		s.mu.Unlock()
		if lastErr == nil {
			return s, nil
		}
	}
	os.RemoveAll(dir)
	return nil, lastErr
}

// postgresReady waits for the postmaster to report "ready" in its pid file
// (what pg_ctl -w waits for) and for its port to accept connections.
func postgresReady(s *Server) error {
	pid, err := os.ReadFile(filepath.Join(s.dir, "data", "postmaster.pid"))
	if err != nil {
		return err
	}
	lines := strings.Split(string(pid), "\n")
	// A pid file left by a killed server names another process.
	if len(lines) < 8 || strings.TrimSpace(lines[0]) != strconv.Itoa(s.proc.Pid) || strings.TrimSpace(lines[7]) != "ready" {
		return errors.New("postmaster not ready yet")
	}
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(s.Port), time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}
