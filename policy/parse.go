package policy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseDuration parses a Go duration string, and also accepts a whole number
// of days with a "d" suffix ("7d"), because the spec's own defaults use it
// (keys.rotation_period) while calling the format a "Go duration".
func ParseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, errors.New("empty duration")
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseUint(days, 10, 32)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		if n > 365*100 {
			return 0, fmt.Errorf("duration %q out of range", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("negative duration %q", s)
	}
	return d, nil
}

// RateLimit is a parsed `rate_limit` ("10/minute"): at most Count calls per Per.
type RateLimit struct {
	Count int
	Per   time.Duration
}

// ParseRateLimit parses "<count>/<period>" with the periods of spec §3.5.2:
// second|sec|s, minute|min|m, hour|hr|h.
func ParseRateLimit(s string) (RateLimit, error) {
	count, period, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return RateLimit{}, fmt.Errorf("invalid rate limit %q: want <count>/<period>", s)
	}
	n, err := strconv.Atoi(strings.TrimSpace(count))
	if err != nil || n <= 0 || n > 1_000_000_000 {
		return RateLimit{}, fmt.Errorf("invalid rate limit %q: count must be a positive integer", s)
	}
	var per time.Duration
	switch strings.ToLower(strings.TrimSpace(period)) {
	case "second", "sec", "s":
		per = time.Second
	case "minute", "min", "m":
		per = time.Minute
	case "hour", "hr", "h":
		per = time.Hour
	default:
		return RateLimit{}, fmt.Errorf("invalid rate limit %q: period must be second, minute or hour", s)
	}
	return RateLimit{Count: n, Per: per}, nil
}

// ParseSize parses a byte size such as "1MB", "512KB", "10MiB" or "4096".
// KB and MB are binary (1024-based) for compatibility with the reference
// implementation; see docs/decisions.md.
func ParseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{
		{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30},
		{"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30},
		{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1},
	} {
		if rest, ok := strings.CutSuffix(t, u.suffix); ok {
			t, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 || n > (1<<40)/mult {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	return n * mult, nil
}
