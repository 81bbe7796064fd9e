// Package atomicfile writes files so that a crash or power cut leaves either
// the old or the new content, never a torn mix.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// WriteFile writes data to path with mode perm: it writes a temporary file in
// the same directory, fsyncs it, renames it over path and fsyncs the
// directory.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, tempPattern(path))
	if err != nil {
		return fmt.Errorf("create temp file for %s: %w", path, err)
	}
	name := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(name)
		}
	}()
	if err := tmp.Chmod(perm); err != nil {
		return fmt.Errorf("chmod %s: %w", name, err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", name, err)
	}
	if err := os.Rename(name, path); err != nil {
		return fmt.Errorf("rename %s: %w", path, err)
	}
	ok = true
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	return nil
}

// tempPattern is the os.CreateTemp pattern of WriteFile's temporary files
// for path: ".NAME.tmp-*" beside it (RemoveStale matches the same names).
func tempPattern(path string) string { return "." + filepath.Base(path) + ".tmp-*" }

// RemoveStale removes the temporary files that interrupted WriteFile calls
// for path left beside it (a crash or power cut between creating the
// temporary file and renaming it). Call it when the owner of path starts,
// before it writes path again: a WriteFile in progress in another process
// would lose its temporary file. It returns the names it removed.
func RemoveStale(path string) ([]string, error) {
	dir, prefix := filepath.Dir(path), "."+filepath.Base(path)+".tmp-"
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("find stale temp files of %s: %w", path, err)
	}
	var removed []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), prefix) || e.IsDir() {
			continue
		}
		name := filepath.Join(dir, e.Name())
		if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return removed, fmt.Errorf("remove stale temp file: %w", err)
		}
		removed = append(removed, name)
	}
	return removed, nil
}
