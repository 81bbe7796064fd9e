package auditexport

import "testing"

// CSVCell defuses every value a spreadsheet would read as a formula,
// blanks or full-width signs first included, and leaves others alone.
func TestCSVCell(t *testing.T) {
	for in, want := range map[string]string{
		"=1+1": "'=1+1", "+1": "'+1", "-1": "'-1", "@SUM(A1)": "'@SUM(A1)", " =1+1": "' =1+1", "\n=1+1": "'\n=1+1",
		"\t=1": "'\t=1", "\r=1": "'\r=1", "＝1+1": "'＝1+1", "　＋1": "'　＋1", "\u00a0-1": "'\u00a0-1", "\tx": "'\tx",
		"alice": "alice", "192.0.2.1": "192.0.2.1", "login.mfa": "login.mfa", "": "", " x": " x", "a=b": "a=b",
	} {
		if got := CSVCell(in); got != want {
			t.Errorf("CSVCell(%q) = %q, want %q", in, got, want)
		}
	}
}
