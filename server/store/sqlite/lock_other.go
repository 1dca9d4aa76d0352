//go:build !unix

package sqlite

import (
	"os"
	"time"
)

func holdShared(*os.File) error { return nil }

// unused, without file locks, takes a snapshot file older than a day to be
// a dead process's: no snapshot takes that long to send.
func unused(path string) bool {
	info, err := os.Stat(path)
	return err == nil && time.Since(info.ModTime()) > 24*time.Hour
}
