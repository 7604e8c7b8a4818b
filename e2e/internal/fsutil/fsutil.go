// Package fsutil holds the file-tree helpers several packages need.
package fsutil

import (
	"io/fs"
	"path/filepath"
)

// Size is the bytes of the regular files under dir, or of dir itself when
// it is a file (0 when absent); symbolic links are not followed.
// Entries it cannot read are skipped: a size is a report, not a check.
func Size(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, ierr := d.Info(); ierr == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}
