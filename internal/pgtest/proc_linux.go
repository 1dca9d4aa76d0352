package pgtest

import (
	"errors"
	"io/fs"
	"syscall"
)

// stopSignal is the immediate shutdown of `pg_ctl stop -m immediate`.
const stopSignal = syscall.SIGQUIT

// sysProcAttr kills the child when the thread that started it exits
// (startLocked keeps that thread for the child's life), and runs it as
// acct if not nil.
func sysProcAttr(acct *osUser) *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if acct != nil {
		// No supplementary groups: canSearch checks the uid and gid alone.
		attr.Credential = &syscall.Credential{Uid: uint32(acct.uid), Gid: uint32(acct.gid)}
	}
	return attr
}

// canSearch reports whether acct may search the directory fi describes.
func canSearch(fi fs.FileInfo, acct *osUser) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	mode := fi.Mode().Perm()
	switch {
	case int(st.Uid) == acct.uid:
		return mode&0o100 != 0
	case int(st.Gid) == acct.gid:
		return mode&0o010 != 0
	default:
		return mode&0o001 != 0
	}
}

// alive reports whether process pid exists.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
