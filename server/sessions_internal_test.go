package server

import (
	"strconv"
	"testing"
	"time"
)

func TestActiveSessionsForgetExpiredOnesWithoutAScrape(t *testing.T) {
	var a activeSessions
	now := time.Unix(1_800_000_000, 0)
	// 20,000 sessions, each with a one-minute token, one a second: about
	// 60 are active at any time, and /metrics is never scraped.
	for i := range 20_000 {
		now = now.Add(time.Second)
		a.seen(strconv.Itoa(i), now.Add(time.Minute), now)
	}
	if n := len(a.until); n > 2*minSessionPrune {
		t.Fatalf("%d sessions remembered, want at most %d", n, 2*minSessionPrune)
	}
	if got := a.count(now); got != 60 {
		t.Fatalf("count = %d, want 60", got)
	}
}
