// Package auditexport streams audit rows as CSV or JSON Lines over HTTP:
// rows are written as the store reads them, a batch at a time, so memory
// stays bounded whatever the number of rows. The console's export and the
// admin API's (camotp admin audit export) both use it.
package auditexport

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/camotp/camotp/internal/model"
)

// Formats.
const (
	CSV   = "csv"
	JSONL = "jsonl"
)

// MaxAtOnce bounds the exports that run at once on one front door: each
// holds a client connection and reads the whole log.
const MaxAtOnce = 2

// FlushRows is how many rows an export writes between flushes (and
// pushes of its write deadline).
const FlushRows = 1000

// WriteWait is how long an export waits for the client to take the next
// rows: the server's write timeout does not end a long download, a client
// that stops reading does.
const WriteWait = 30 * time.Second

// MaxTime bounds a whole export, so that a client reading slowly on
// purpose cannot hold an export slot for good (a million rows take well
// under a minute).
const MaxTime = 15 * time.Minute

// Header is the CSV header: the row's fields, its chain, position and MAC
// (hex), so an export can be checked against the chain.
var Header = []string{"id", "time", "actor", "action", "subject", "result", "source_ip", "detail", "chain", "seq", "mac"}

// ValidFormat tells whether format is CSV or JSONL.
func ValidFormat(format string) bool { return format == CSV || format == JSONL }

// ContentType is the media type of format.
func ContentType(format string) string {
	if format == CSV {
		return "text/csv; charset=utf-8"
	}
	return "application/x-ndjson"
}

// CSVCell makes a value safe to open in a spreadsheet: a value that would
// start a formula (=, +, -, @ or their full-width forms, after any
// leading blanks; a tab, carriage return or line feed) starts with an
// apostrophe instead. The audit log holds what clients sent (a made-up
// username of a failed sign-in).
func CSVCell(s string) string {
	if s == "" {
		return s
	}
	// Spreadsheets skip leading blanks before they look for a formula,
	// and take the full-width signs for the ASCII ones.
	first, _ := utf8.DecodeRuneInString(strings.TrimLeftFunc(s, unicode.IsSpace))
	if strings.ContainsRune("\t\r\n", rune(s[0])) || strings.ContainsRune("=+-@＝＋－＠", first) {
		return "'" + s
	}
	return s
}

// Writer writes rows in one format.
type Writer struct {
	bw    *bufio.Writer
	cw    *csv.Writer
	enc   *json.Encoder
	wrote bool
}

// NewWriter writes rows to w as format (CSV: Header first).
func NewWriter(w io.Writer, format string) (*Writer, error) {
	if !ValidFormat(format) {
		return nil, fmt.Errorf("format %q: want csv or jsonl", format)
	}
	ew := &Writer{bw: bufio.NewWriterSize(w, 32<<10)}
	if format == CSV {
		ew.cw = csv.NewWriter(ew.bw)
		if err := ew.cw.Write(Header); err != nil {
			return nil, err
		}
	} else {
		ew.enc = json.NewEncoder(ew.bw)
		ew.enc.SetEscapeHTML(false)
	}
	return ew, nil
}

// Write writes one row.
func (w *Writer) Write(a model.AuditEntry) error {
	if w.enc != nil {
		return w.enc.Encode(a)
	}
	return w.cw.Write([]string{strconv.FormatInt(a.ID, 10), a.At.UTC().Format(time.RFC3339Nano), CSVCell(a.Actor), CSVCell(a.Action),
		CSVCell(a.Subject), CSVCell(a.Result), CSVCell(a.SourceIP), CSVCell(a.Detail), strconv.Itoa(a.Chain),
		strconv.FormatInt(a.Seq, 10), hex.EncodeToString(a.MAC)})
}

// Flush writes what is buffered.
func (w *Writer) Flush() error {
	if w.cw != nil {
		if w.cw.Flush(); w.cw.Error() != nil {
			return w.cw.Error()
		}
	}
	return w.bw.Flush()
}

// Each calls fn for every row of an export, as the store reads them
// (storage's AuditEach with the export's filter).
type Each func(ctx context.Context, fn func(model.AuditEntry) error) error

// Stream answers r with the rows of each as format, a download named
// filename: headers, then the rows, flushed every FlushRows rows, the
// write deadline pushed WriteWait ahead each time, the whole bounded by
// MaxTime. It returns how many rows went out; after an error the caller
// must cut the response (panic(http.ErrAbortHandler)): the rows sent so
// far went out with a 200, and the client must see a broken download, not
// a short log.
func Stream(w http.ResponseWriter, r *http.Request, format, filename string, each Each) (int, error) {
	h := w.Header()
	h.Set("Content-Type", ContentType(format))
	h.Set("Content-Disposition", `attachment; filename="`+filename+`"`)
	rc := http.NewResponseController(w)
	rc.SetWriteDeadline(time.Now().Add(WriteWait)) // not every ResponseWriter can: then the server's own
	ew, err := NewWriter(w, format)
	if err != nil {
		return 0, err
	}
	n := 0
	ctx, cancel := context.WithTimeout(r.Context(), MaxTime)
	defer cancel()
	err = each(ctx, func(a model.AuditEntry) error {
		if err := ew.Write(a); err != nil {
			return err
		}
		if n++; n%FlushRows == 0 {
			if err := ew.Flush(); err != nil {
				return err
			}
			rc.Flush()
			rc.SetWriteDeadline(time.Now().Add(WriteWait))
		}
		return nil
	})
	if err == nil {
		err = ew.Flush()
	}
	return n, err
}
