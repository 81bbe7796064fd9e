//go:build race

package web_test

// raceDetector says the tests run under the race detector, where SQLite
// (compiled from C to Go) runs about fifteen times slower.
const raceDetector = true
