package loadtest

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// raiseFileLimit raises the soft limit of open files to what the devices
// need: each replica holds a writer and up to max(2, GOMAXPROCS) readers,
// each with the database, its WAL and its shared-memory file open, and a
// connection to the server (and, in process, the server's end of it). A
// device with no replica (a replay load's) holds only the connection.
func raiseFileLimit(devices int, replicas bool) error {
	perDevice := 2
	if replicas {
		perDevice += 3 * (1 + max(2, runtime.GOMAXPROCS(0)))
	}
	need := uint64(devices*perDevice + 256)
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return nil // not knowable here: try anyway
	}
	if lim.Cur >= need {
		return nil
	}
	if lim.Max < need {
		return fmt.Errorf("%d devices need about %d open files, and the hard limit is %d: raise it (ulimit -Hn) or run fewer devices", devices, need, lim.Max)
	}
	lim.Cur = lim.Max
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU reads a process's user and system time from /proc/PID/stat (in
// clock ticks of 1/100 s, Linux's USER_HZ).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command name (which may hold spaces), from
	// field 3 on: utime and stime are fields 14 and 15.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(fields[11], 10, 64)
	st, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// procPeakRSS reads VmHWM, the peak resident set, of /proc/WHICH/status.
func procPeakRSS(which string) int64 { return procStatus(which, "VmHWM:") }

// procFileRSS reads RssFile of /proc/WHICH/status: the resident pages of
// files mapped, the server's database among them (SQLite maps it for
// reading). They are the OS's page cache, shared and dropped under
// pressure, yet counted in the resident set.
func procFileRSS(which string) int64 { return procStatus(which, "RssFile:") }

// procStatus reads a field in kB of /proc/WHICH/status, in bytes.
func procStatus(which, field string) int64 {
	b, err := os.ReadFile("/proc/" + which + "/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, field); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func openFiles() int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	return len(entries)
}
