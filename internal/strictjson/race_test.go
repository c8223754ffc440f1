//go:build race

package strictjson

// raceEnabled reports a -race build, whose instrumentation may allocate:
// allocation counts are checked by the plain test run only.
const raceEnabled = true
