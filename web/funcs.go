package web

import (
	"encoding/hex"
	"html/template"
	"strconv"
	"time"
)

// templateFuncs are the helpers the templates call.
var templateFuncs = template.FuncMap{
	// utc is t in UTC to the second.
	"utc": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") },
	// thousands writes n with thousands separated by commas.
	"thousands": thousands,
	// hex is b in hexadecimal.
	"hex": hex.EncodeToString,
}

// thousands writes n with its thousands separated by commas (10,000).
func thousands(n int) string {
	s := strconv.Itoa(n)
	neg := ""
	if n < 0 {
		neg, s = "-", s[1:]
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return neg + s
}
