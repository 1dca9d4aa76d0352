//go:build !linux

package pgtest

import (
	"io/fs"
	"os"
	"syscall"
)

// stopSignal stops the server: elsewhere than Linux, by killing it.
var stopSignal = os.Kill

// sysProcAttr: elsewhere than Linux, a child cannot be told to die with its
// parent, and the server does not run as another user (serverUser is nil
// unless root, and startServer refuses that below).
func sysProcAttr(*osUser) *syscall.SysProcAttr { return nil }

// canSearch: running as another user is for Linux only.
func canSearch(fs.FileInfo, *osUser) bool { return false }

// alive assumes a process lives: no directory is removed as stale.
func alive(int) bool { return true }
