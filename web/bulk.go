package web

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/camotp/camotp/internal/httpx"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/provisioning"
	"github.com/camotp/camotp/signin"
)

// Bulk assignment: a CSV file of serial,username rows is uploaded and
// checked (preview: every row's result, nothing changed), then applied as
// a whole or not at all. The preview carries the rows it checked to the
// apply in a form field; the apply checks them again.

// uploadMax bounds the body of an upload or an apply: the file (or the
// rows, with their line numbers) and the form around it.
const uploadMax = 2*provisioning.MaxBulkBytes + 64<<10

// bulkPage is the bulk assignment page: the upload form, or a preview or
// an apply's result.
type bulkPage struct {
	Rows      []provisioning.BulkRow
	Carry     string // the checked rows, for the apply
	Assign    int
	Unchanged int
	Invalid   int
	Applied   bool
	MaxRows   int
	MaxKiB    int
}

func newBulkPage(rows []provisioning.BulkRow, applied bool) *bulkPage {
	b := &bulkPage{Rows: rows, Applied: applied, MaxRows: provisioning.MaxBulkRows, MaxKiB: provisioning.MaxBulkBytes >> 10}
	for _, r := range rows {
		switch r.Status {
		case provisioning.BulkAssign, provisioning.BulkAssigned:
			b.Assign++
		case provisioning.BulkUnchanged:
			b.Unchanged++
		default:
			b.Invalid++
		}
	}
	if b.Invalid == 0 && !applied {
		b.Carry = provisioning.EncodeRows(rows)
	}
	return b
}

func (wb *Web) bulkPage(w http.ResponseWriter, r *http.Request, st signin.Staff) {
	wb.renderBulk(w, r, st, http.StatusOK, console{Bulk: newBulkPage(nil, false)})
}

func (wb *Web) renderBulk(w http.ResponseWriter, r *http.Request, st signin.Staff, status int, c console) {
	c.Staff, c.Section = st, "assignments"
	wb.renderConsole(w, r, status, "console_bulk.html", c)
}

// csrfUpload is csrf for a multipart form of at most uploadMax bytes
// (413 with the limit past it), for a staff member the console let in:
// nobody else's upload is read at all.
func (wb *Web) csrfUpload(next staffHandler) staffHandler {
	return func(w http.ResponseWriter, r *http.Request, st signin.Staff) {
		r.Body = http.MaxBytesReader(w, r.Body, uploadMax)
		if err := r.ParseMultipartForm(uploadMax); err != nil {
			if errors.As(err, new(*http.MaxBytesError)) {
				w.Header().Set("Connection", "close")
				wb.renderConsole(w, r, http.StatusRequestEntityTooLarge, "forbidden.html",
					console{Staff: st, Error: "Nothing was assigned: " + provisioning.ErrBulkTooLarge.Error() + "."})
				return
			}
			http.Error(w, "form malformed: upload the file again", http.StatusBadRequest)
			return
		}
		defer r.MultipartForm.RemoveAll()
		if !wb.csrfValid(r) {
			http.Error(w, "invalid or missing CSRF token: reload the page and try again", http.StatusForbidden)
			return
		}
		next(w, r, st)
	}
}

// bulkError answers an upload that could not be read as a whole.
func (wb *Web) bulkError(w http.ResponseWriter, r *http.Request, st signin.Staff, err error) {
	status := http.StatusBadRequest
	if errors.Is(err, provisioning.ErrBulkTooLarge) || errors.Is(err, provisioning.ErrBulkTooMany) {
		status = http.StatusRequestEntityTooLarge
	}
	wb.renderBulk(w, r, st, status, console{Bulk: newBulkPage(nil, false), Error: "Nothing was assigned: " + err.Error() + "."})
}

func (wb *Web) bulkPreview(w http.ResponseWriter, r *http.Request, st signin.Staff) {
	f, _, err := r.FormFile("file")
	if err != nil {
		wb.bulkError(w, r, st, errors.New("choose a CSV file to upload"))
		return
	}
	defer f.Close()
	rows, err := provisioning.ParseBulk(f)
	if err != nil {
		wb.bulkError(w, r, st, err)
		return
	}
	checked, err := wb.Fleet.CheckAssignments(r.Context(), rows, st.Role != model.RoleAdmin)
	if err != nil {
		status, msg := wb.serverError(w, "check assignments", err)
		wb.renderBulk(w, r, st, status, console{Bulk: newBulkPage(nil, false), Error: msg})
		return
	}
	b := newBulkPage(checked, false)
	c := console{Bulk: b}
	switch {
	case b.Invalid > 0:
		c.Error = fmt.Sprintf("%d of %d rows cannot be applied (marked below). Nothing will be assigned from this file: fix those rows and upload it again.", b.Invalid, len(checked))
	case b.Assign == 0:
		c.Notice = "Every camera in the file is assigned so already: nothing to do."
		b.Carry = ""
	default:
		c.Notice = fmt.Sprintf("Every row checks out: %d to assign, %d unchanged. Nothing is changed until you apply them.", b.Assign, b.Unchanged)
	}
	wb.renderBulk(w, r, st, http.StatusOK, c)
}

func (wb *Web) bulkApply(w http.ResponseWriter, r *http.Request, st signin.Staff) {
	rows, err := provisioning.DecodeRows(r.PostForm.Get("rows"))
	if err != nil {
		wb.bulkError(w, r, st, err)
		return
	}
	done, err := wb.Fleet.ApplyAssignments(r.Context(), rows, st.Role != model.RoleAdmin, st.Username, httpx.ClientIP(r))
	switch {
	case errors.Is(err, provisioning.ErrBulkHasErrors):
		b := newBulkPage(done, false)
		wb.renderBulk(w, r, st, http.StatusConflict, console{Bulk: b,
			Error: "Nothing was assigned: the fleet changed since the preview and some rows no longer apply (marked below). Upload the file again."})
	case err != nil:
		status, msg := wb.serverError(w, "apply assignments", err)
		wb.renderBulk(w, r, st, status, console{Bulk: newBulkPage(nil, false), Error: msg})
	default:
		b := newBulkPage(done, true)
		wb.renderBulk(w, r, st, http.StatusOK, console{Bulk: b, Notice: fmt.Sprintf("Done: %d cameras assigned, %d unchanged.", b.Assign, b.Unchanged)})
	}
}
