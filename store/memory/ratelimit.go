package memory

import (
	"context"
	"sync"
	"time"

	"github.com/agentid/agentid/store"
)

// RateLimiter is an in-process store.RateLimiter: an exact sliding log of
// the accepted calls per key (N calls in any window of one period), and
// above rateExactMax calls per period a bucketed sliding window whose
// count never underestimates (it may refuse up to one bucket's width
// early, never late). A token bucket was not used because, once its burst
// is spent, it refills continuously and admits more than N calls in some
// windows, which is not what "10/minute" reads as.
type RateLimiter struct {
	mu     sync.Mutex
	keys   map[string]*slidingLog
	closed bool
}

// NewRateLimiter returns an empty rate limiter.
func NewRateLimiter() *RateLimiter {
	return &RateLimiter{keys: make(map[string]*slidingLog)}
}

// Allow implements store.RateLimiter.
func (r *RateLimiter) Allow(ctx context.Context, key string, limit int, per time.Duration, now time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if key == "" {
		return false, store.ErrEmptyKey
	}
	if limit <= 0 || per <= 0 {
		return false, store.ErrInvalidLimit
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return false, store.ErrClosed
	}
	l := r.keys[key]
	if l == nil || l.limit != limit || l.per != per {
		l = &slidingLog{limit: limit, per: per}
		r.keys[key] = l
	}
	r.mu.Unlock()
	return l.allow(now), nil
}

// Len returns the number of keys counted.
func (r *RateLimiter) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.keys)
}

// Close implements store.RateLimiter.
func (r *RateLimiter) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	r.keys = nil
	return nil
}

const (
	rateExactMax = 4096
	rateBuckets  = 64
)

// slidingLog is the state of one key. Offsets are relative to its first
// call, so that time far in the past or future cannot overflow.
type slidingLog struct {
	limit int
	per   time.Duration

	mu      sync.Mutex
	started bool
	origin  time.Time     // the first call's time
	latest  time.Duration // the latest offset seen

	// Exact log, for limit <= rateExactMax: offsets of the accepted calls
	// still in the window, as a ring.
	log        []time.Duration
	head, size int

	// Bucketed window, for larger limits, where a log per call would cost
	// too much memory: rateBuckets+1 counters cover at least one full
	// period.
	buckets []int
	cur     int64 // index of the newest bucket
	sum     int
}

// allow records and admits a call at now, or refuses it.
func (l *slidingLog) allow(now time.Time) bool {
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

func (l *slidingLog) allowExact(off time.Duration) bool {
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

func (l *slidingLog) allowBucketed(off time.Duration) bool {
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
