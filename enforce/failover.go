package enforce

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentid/agentid/policy"
)

// Failover modes of spec.server.failover_mode (§3.8.3).
const (
	FailClosed  = "fail_closed"
	FailOpen    = "fail_open"
	LocalPolicy = "local_policy"
)

// outage tracks one period in which shared state (the nonce, revocation or
// rate-limit store) cannot answer, for the fail_open constraints: the
// requests let through and the time since the outage began. The first store
// answer after it ends the outage.
type outage struct {
	flag     atomic.Bool // active, read without the lock on the hot path
	mu       sync.Mutex
	active   bool
	since    time.Time
	requests int
}

// failoverVerdict is what failover_mode makes of a call whose shared state
// could not be read.
type failoverVerdict struct {
	allow  bool
	local  bool   // local_policy: decide with this process's own state
	reason string // why it was refused, for the audit log
	// started is set on the first call of a fail_open outage: the one that
	// raises the alert_webhook.
	started bool
}

// decide applies the policy's failover mode to a call to tool at now.
func (o *outage) decide(cfg policy.ServerConfig, failure string, tool string, now time.Time) failoverVerdict {
	switch cfg.FailoverMode {
	case LocalPolicy:
		return failoverVerdict{allow: true, local: true}
	case FailOpen:
	default:
		return failoverVerdict{reason: "failover_mode fail_closed"}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	started := false
	if !o.active {
		o.active, o.since, o.requests = true, now, 0
		o.flag.Store(true)
		started = true
	}
	o.requests++
	if c := cfg.FailOpen; c != nil {
		switch {
		case c.MaxRequests > 0 && o.requests > c.MaxRequests:
			return failoverVerdict{reason: "fail_open max_requests exceeded"}
		case c.MaxDuration > 0 && now.Sub(o.since) > c.MaxDuration:
			return failoverVerdict{reason: "fail_open max_duration exceeded"}
		case len(c.AllowedTools) > 0 && !containsNormalized(c.AllowedTools, tool):
			return failoverVerdict{reason: "tool not in fail_open allowed_tools"}
		case c.RequireLocalPolicy && failure != "":
			return failoverVerdict{reason: "fail_open requires a valid local policy"}
		}
	}
	return failoverVerdict{allow: true, started: started}
}

// FailOpenAlert is the alert of spec §3.8.3 step 6: fail_open began letting
// calls through because shared state or the validation server could not
// answer. It is raised once per outage.
type FailOpenAlert struct {
	// Webhook is fail_open_constraints.alert_webhook ("" when unset).
	Webhook    string
	Since      time.Time
	Tool       string // the first call let through
	What       string // what could not answer, e.g. "rate-limit store"
	PolicyHash string
}

// recovered ends the outage: a store answered.
func (o *outage) recovered() {
	if !o.flag.Load() {
		return
	}
	o.mu.Lock()
	o.active = false
	o.flag.Store(false)
	o.mu.Unlock()
}

func containsNormalized(names []string, tool string) bool {
	n := policy.NormalizeName(tool)
	for _, s := range names {
		if policy.NormalizeName(s) == n {
			return true
		}
	}
	return false
}
