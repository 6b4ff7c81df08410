//go:build !race

package selarti

// raceEnabled: see race_on_test.go.
const raceEnabled = false
