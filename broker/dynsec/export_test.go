package dynsec

// SetPage makes a list fetch n items per request (the tests page through a
// handful of clients).
func SetPage(a *Accounts, n int) { a.page = n }
