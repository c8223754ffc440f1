//go:build race

package dlp

// raceEnabled reports a -race build, in which sync.Pool drops items at
// random and allocation counts mean nothing. The plain test run checks them.
const raceEnabled = true
