//go:build unix

package sqlite

import (
	"os"
	"syscall"
)

// holdShared takes a shared lock on f, held until f is closed: the file is
// in use by this process.
func holdShared(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_SH)
}

// unused reports whether no process holds a lock on the file at path (a
// process that died released its locks with its files).
func unused(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil
}
