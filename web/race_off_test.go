//go:build !race

package web_test

// raceDetector says the tests run under the race detector.
const raceDetector = false
