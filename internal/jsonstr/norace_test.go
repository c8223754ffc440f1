//go:build !race

package jsonstr

const raceEnabled = false
