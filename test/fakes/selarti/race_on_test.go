//go:build race

package selarti

// raceEnabled is true when the tests run under the race detector, which
// makes each HTTP round trip many times slower; the load test then uses
// fewer dialogs to stay within the package's time budget.
const raceEnabled = true
