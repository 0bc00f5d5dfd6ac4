package main

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// trimEvery is how often a daemon hands back the pages of its binary it
// no longer uses.
const trimEvery = 5 * time.Minute

// trimExecutableLoop drops the daemon's binary from its resident memory a
// few seconds after start (start-up code and tables are not needed again)
// and every trimEvery after that, until ctx ends. Only read-only mappings
// of the executable are dropped: the kernel maps back, from the page
// cache, whatever the daemon touches next, so this costs a few thousand
// minor page faults and frees what an idle node does not use.
func trimExecutableLoop(ctx context.Context, log *slog.Logger) {
	t := time.NewTimer(3 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n, err := trimExecutable(); err != nil {
			log.Debug("could not drop unused pages of the binary", "err", err)
		} else {
			log.Debug("dropped the binary's pages from resident memory", "bytes", n)
		}
		t.Reset(trimEvery)
	}
}

// trimExecutable advises the kernel that the read-only mappings of this
// process's executable are not needed now (MADV_DONTNEED) and returns
// their size. Writable mappings are left alone: dropping them would lose
// their contents.
func trimExecutable() (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("find the executable: %w", err)
	}
	if p, err := filepath.EvalSymlinks(exe); err == nil {
		exe = p
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	total := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// address perms offset dev inode path
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[5] != exe || strings.Contains(fields[1], "w") {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, uintptr(start), uintptr(end-start), unix.MADV_DONTNEED); errno != 0 {
			return total, fmt.Errorf("madvise %s: %w", fields[0], errno)
		}
		total += int(end - start)
	}
	return total, sc.Err()
}
