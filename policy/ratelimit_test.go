package policy

import (
	"testing"
	"time"
)

func TestRateLimiterSlidingWindow(t *testing.T) {
	l := newRateLimiter(RateLimit{Count: 3, Per: time.Minute})
	t0 := testNow
	for i, tc := range []struct {
		at   time.Duration
		want bool
	}{
		{0, true}, {10 * time.Second, true}, {20 * time.Second, true},
		{30 * time.Second, false}, // 4th within a minute
		{59*time.Second + 999*time.Millisecond, false},
		{60 * time.Second, true},  // the call at 0 has left the window
		{61 * time.Second, false}, // calls at 10s, 20s, 60s still in it
		{70 * time.Second, true},  // 10s has left
		{80 * time.Second, true},  // 20s has left
		{81 * time.Second, false},
	} {
		if got := l.allow(t0.Add(tc.at)); got != tc.want {
			t.Fatalf("call %d at +%v: %v, want %v", i, tc.at, got, tc.want)
		}
	}
}

func TestRateLimiterTimeGoingBackwardsCountsAsNow(t *testing.T) {
	l := newRateLimiter(RateLimit{Count: 1, Per: time.Second})
	if !l.allow(testNow) {
		t.Fatal("first call refused")
	}
	if l.allow(testNow.Add(-time.Hour)) {
		t.Fatal("a call from the past escaped the window")
	}
	if !l.allow(testNow.Add(time.Second)) {
		t.Fatal("call after the window refused")
	}
}

func TestRateLimiterZeroTimeStillLimits(t *testing.T) {
	l := newRateLimiter(RateLimit{Count: 2, Per: time.Hour})
	var zero time.Time
	if !l.allow(zero) || !l.allow(zero) || l.allow(zero) {
		t.Fatal("a caller that never sets Now is not limited to the count")
	}
}

func TestRateLimiterLargeCountsNeverExceedTheLimit(t *testing.T) {
	const n = 10000
	l := newRateLimiter(RateLimit{Count: n, Per: time.Second})
	// Spread 3n calls evenly over 3 s and check every 1 s window.
	var accepted []time.Duration
	for i := range 3 * n {
		at := time.Duration(i) * time.Second / n
		if l.allow(testNow.Add(at)) {
			accepted = append(accepted, at)
		}
	}
	lo := 0
	for hi := range accepted {
		for accepted[hi]-accepted[lo] >= time.Second {
			lo++
		}
		if hi-lo+1 > n {
			t.Fatalf("%d calls accepted in the window ending %v", hi-lo+1, accepted[hi])
		}
	}
	// Conservative by at most one bucket: most of the offered calls pass.
	if len(accepted) < 2*n {
		t.Fatalf("accepted only %d of %d calls", len(accepted), 3*n)
	}
	// After a quiet period the full count is available again.
	l2 := newRateLimiter(RateLimit{Count: n, Per: time.Second})
	for range n {
		if !l2.allow(testNow) {
			t.Fatal("burst within the limit refused")
		}
	}
	if l2.allow(testNow) {
		t.Fatal("call n+1 accepted")
	}
	if !l2.allow(testNow.Add(time.Second + time.Second/rateBuckets)) {
		t.Fatal("call after the window refused")
	}
}
