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
// their size. Only mappings whose every page is the file's own are
// dropped: writable ones, and read-only ones holding pages written since
// (relocated data the dynamic loader made read-only afterwards, shown as
// Anonymous in smaps), would lose their contents.
func trimExecutable() (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("find the executable: %w", err)
	}
	if p, err := filepath.EvalSymlinks(exe); err == nil {
		exe = p
	}
	maps, err := executableMappings("/proc/self/smaps", exe)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, m := range maps {
		if m.writable || m.anonKB != 0 {
			continue
		}
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, uintptr(m.start), uintptr(m.end-m.start), unix.MADV_DONTNEED); errno != 0 {
			return total, fmt.Errorf("madvise %x-%x: %w", m.start, m.end, errno)
		}
		total += int(m.end - m.start)
	}
	return total, nil
}

// A mapping is one mapping of the executable, as smaps describes it.
type mapping struct {
	start, end uint64
	writable   bool
	anonKB     int // pages no longer the file's (copy-on-write), in kB
}

// executableMappings returns the mappings of the file exe listed in the
// smaps file at path.
func executableMappings(path, exe string) ([]mapping, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []mapping
	var cur *mapping
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if lo, hi, ok := strings.Cut(fields[0], "-"); ok && len(fields) >= 5 {
			// A mapping's header: address perms offset dev inode [path].
			cur = nil
			start, err1 := strconv.ParseUint(lo, 16, 64)
			end, err2 := strconv.ParseUint(hi, 16, 64)
			if err1 != nil || err2 != nil || len(fields) < 6 || fields[5] != exe || end <= start {
				continue
			}
			out = append(out, mapping{start: start, end: end, writable: strings.Contains(fields[1], "w")})
			cur = &out[len(out)-1]
			continue
		}
		if cur != nil && fields[0] == "Anonymous:" && len(fields) >= 2 {
			kb, err := strconv.Atoi(fields[1])
			if err != nil {
				return nil, fmt.Errorf("%s: bad Anonymous line %q", path, line)
			}
			cur.anonKB = kb
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return out, nil
}
