// Package benchkit holds what the measuring programs under tools/ share:
// the CPU time of a child process, the summary of per-round ratios, tokens
// minted without an HTTP round trip, and stopping a child.
package benchkit

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/agentid/agentid/identity"
	"github.com/agentid/agentid/policy"
)

// ProcessCPU is the user and system CPU time process pid has used so far,
// all its threads, without its children: fields 14 and 15 of
// /proc/pid/stat, in clock ticks of 10 ms (USER_HZ is 100 on Linux).
func ProcessCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name, field 2, is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("benchkit: unreadable /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:])) // f[0] is field 3
	if len(f) < 13 {
		return 0, fmt.Errorf("benchkit: unreadable /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("benchkit: unreadable /proc/%d/stat", pid)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

// RatioSummary is the median of per-round ratios with their range, as
// "1.23× [1.10–1.40]"; "n/a" for none.
func RatioSummary(rs []float64) string {
	if len(rs) == 0 {
		return "n/a"
	}
	s := append([]float64(nil), rs...)
	sort.Float64s(s)
	return fmt.Sprintf("%.2f× [%.2f–%.2f]", s[len(s)/2], s[0], s[len(s)-1])
}

// Stop interrupts cmd and waits for it, killing it after 10 s.
func Stop(cmd *exec.Cmd) {
	cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// Minter issues tokens as a server's POST /v1/token would (same keys, same
// policy), without the HTTP round trip, all in one AIP session.
type Minter struct {
	m       *identity.Manager
	session string
}

// NewMinter returns a Minter for the policy p signing with ks.
func NewMinter(p *policy.Policy, ks *identity.KeySet) (*Minter, error) {
	m, err := identity.NewManager(identity.Config{Policy: p, Keys: ks, RemoteAgents: true, Binding: &identity.Binding{}})
	if err != nil {
		return nil, err
	}
	return &Minter{m: m}, nil
}

// Mint returns n fresh tokens.
func (mi *Minter) Mint(n int) ([]string, error) {
	b := identity.Binding{ProcessID: os.Getpid(), Hostname: "bench", PolicyPath: "/bench/policy.yaml"}
	out := make([]string, n)
	for i := range out {
		tok, c, err := mi.m.IssueFor(context.Background(), mi.session, b)
		if err != nil {
			return nil, err
		}
		mi.session = c.SessionID
		out[i] = tok
	}
	return out, nil
}
