//go:build !linux

package approve

import "os"

// flushInput is a no-op here; type-ahead of complete lines is still
// discarded by the line reader.
func flushInput(*os.File) {}

// isForeground assumes the foreground; see the Linux implementation.
func isForeground(*os.File) bool { return true }
