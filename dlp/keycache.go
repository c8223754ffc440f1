package dlp

import "sync"

// keyCache remembers object keys in which no pattern of one direction
// matches. Documents repeat the same few keys ("content", "type", "text")
// in every message, and scanning each of them with every pattern costs a
// 4 KB tool result about a tenth of its scan; a key that is clean once is
// clean for ever, since the patterns of a Scanner never change. Only clean
// keys scanned whole are remembered, only short ones, and only so many: a
// peer that sends endless distinct keys fills it and is then scanned as
// before.
type keyCache struct {
	mu sync.RWMutex
	m  map[string]struct{}
}

const (
	maxCachedKeyLen = 64
	maxCachedKeys   = 4096
)

func (c *keyCache) clean(key []byte) bool {
	if c == nil || len(key) > maxCachedKeyLen {
		return false
	}
	c.mu.RLock()
	_, ok := c.m[string(key)]
	c.mu.RUnlock()
	return ok
}

func (c *keyCache) add(key []byte) {
	if c == nil || len(key) > maxCachedKeyLen {
		return
	}
	c.mu.Lock()
	if len(c.m) < maxCachedKeys {
		if c.m == nil {
			c.m = make(map[string]struct{})
		}
		c.m[string(key)] = struct{}{}
	}
	c.mu.Unlock()
}
