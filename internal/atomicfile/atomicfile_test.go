package atomicfile

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestRemoveStale: the temp files of interrupted writes of one file go, the
// file itself and everything else stay, and WriteFile leaves none.
func TestRemoveStale(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "seed.json")
	if err := WriteFile(path, []byte(`{"version":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	// A temp file as WriteFile names them, left by a crash before the rename.
	tmp, err := os.CreateTemp(dir, tempPattern(path))
	if err != nil {
		t.Fatal(err)
	}
	tmp.WriteString(`{"versi`)
	tmp.Close()
	keep := []string{"seed.json", ".other.json.tmp-1", "seed.json.tmp-2", ".seed.json.bak"}
	for _, name := range keep[1:] {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := RemoveStale(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != tmp.Name() {
		t.Fatalf("removed %q, want [%s]", removed, tmp.Name())
	}
	entries, _ := os.ReadDir(dir)
	var left []string
	for _, e := range entries {
		left = append(left, e.Name())
	}
	slices.Sort(left)
	slices.Sort(keep)
	if !slices.Equal(left, keep) {
		t.Fatalf("left %q, want %q", left, keep)
	}
	if got, _ := os.ReadFile(path); string(got) != `{"version":1}` {
		t.Fatalf("file is %q", got)
	}
	if removed, err := RemoveStale(path); err != nil || len(removed) != 0 {
		t.Fatalf("second call: %q %v", removed, err)
	}
}
