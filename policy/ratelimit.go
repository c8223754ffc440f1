package policy

import (
	"sync"
	"time"
)

// rateLimiter enforces a tool rule's rate_limit ("N/period"): at most N calls
// are accepted within any window of one period; call N+1 is refused until
// the oldest accepted call has left the window. AIP §3.5.2 leaves the
// algorithm open. A token bucket was not used because, once its burst is
// spent, it refills continuously and admits more than N calls in some
// windows, which is not what "10/minute" reads as.
//
// Time comes only from the caller (ToolCall.Now), so decisions replay
// deterministically in tests. Time that goes backwards is treated as the
// latest time seen.
//
// A refused call does not count: a client that keeps calling while limited
// is not locked out forever. Every other call counts, including calls that a
// later check blocks, because the limit is step 1 of AIP §4.3 and must be
// spent before the other checks run (otherwise an agent could probe rules
// and paths for free).
type rateLimiter struct {
	limit int
	per   time.Duration

	mu      sync.Mutex
	started bool
	origin  time.Time     // the first call's time; offsets are relative to it
	latest  time.Duration // the latest offset seen

	// Exact sliding log, for limit <= rateExactMax: offsets of the accepted
	// calls still in the window, as a ring.
	log        []time.Duration
	head, size int

	// Bucketed sliding window, for larger limits, where a log per call would
	// cost too much memory: rateBuckets+1 counters cover at least one full
	// period, so the count never underestimates the calls in the window
	// (it may refuse up to one bucket's width early, never late).
	buckets []int
	cur     int64 // index of the newest bucket
	sum     int
}

const (
	rateExactMax = 4096
	rateBuckets  = 64
)

func newRateLimiter(rl RateLimit) *rateLimiter {
	return &rateLimiter{limit: rl.Count, per: rl.Per}
}

// allow records and admits a call at now, or refuses it.
func (l *rateLimiter) allow(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.started {
		l.started, l.origin = true, now
	}
	off := now.Sub(l.origin) // saturates instead of overflowing
	if off < l.latest {
		off = l.latest
	}
	l.latest = off
	if l.limit <= rateExactMax {
		return l.allowExact(off)
	}
	return l.allowBucketed(off)
}

func (l *rateLimiter) allowExact(off time.Duration) bool {
	if l.log == nil {
		l.log = make([]time.Duration, l.limit)
	}
	// Calls at or before off-per are outside the window (off-per, off].
	for l.size > 0 && off-l.log[l.head] >= l.per {
		l.head = (l.head + 1) % l.limit
		l.size--
	}
	if l.size >= l.limit {
		return false
	}
	l.log[(l.head+l.size)%l.limit] = off
	l.size++
	return true
}

func (l *rateLimiter) allowBucketed(off time.Duration) bool {
	width := l.per / rateBuckets
	n := int64(rateBuckets + 1)
	if l.buckets == nil {
		l.buckets = make([]int, n)
	}
	b := int64(off / width)
	if b > l.cur {
		// Clear the buckets that fell out of the window.
		for k := l.cur + 1; k <= b && k <= l.cur+n; k++ {
			l.sum -= l.buckets[k%n]
			l.buckets[k%n] = 0
		}
		l.cur = b
	}
	if l.sum >= l.limit {
		return false
	}
	l.buckets[b%n]++
	l.sum++
	return true
}
