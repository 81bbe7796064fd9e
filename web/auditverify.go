package web

import (
	"fmt"
	"net/http"

	"github.com/camotp/camotp/internal/httpx"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/signin"
)

// auditVerify checks the audit log's hash chains (POST /admin/audit/verify)
// and shows the verdict; the check is audited like every console action.
func (wb *Web) auditVerify(w http.ResponseWriter, r *http.Request, st signin.Staff) {
	// A check reads the whole log, as an export does: they share its slots.
	if !wb.auditSlot(w, r, st) {
		return
	}
	defer func() { <-wb.exports }()
	v, err := wb.Audit.VerifyAudit(r.Context())
	if err != nil {
		wb.consoleError(w, r, st, "verify audit", err)
		return
	}
	result, detail := "ok", fmt.Sprintf("%d rows in %d chains hold", v.Rows, v.Chains)
	if b := v.Broken; b != nil {
		result, detail = "error: chain broken", b.Reason
	}
	wb.Audit.Audit(r.Context(), model.AuditEntry{Actor: st.Username, Action: "audit.verify", Subject: "audit", Result: result,
		SourceIP: httpx.ClientIP(r), Detail: detail})
	wb.renderConsole(w, r, http.StatusOK, "console_verify.html", console{Staff: st, Section: "audit", Verdict: &v})
}
