package sandbox

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rulesetAttr is struct landlock_ruleset_attr up to handled_access_net
// (ABI 4); older kernels accept it with the net field zero.
type rulesetAttr struct {
	fs  uint64
	net uint64
}

// confine restricts the calling OS thread with Landlock: afterwards it
// (and any thread it creates) can read files only under read and write,
// write only under write, execute nothing, and (on kernels with Landlock
// ABI 4) open no TCP connection. The caller must hold the thread with
// runtime.LockOSThread and do all the worker's file access from it: Go
// cannot apply Landlock to every thread of a cgo-linked binary. It reports
// false, with no error, when the kernel lacks Landlock.
func confine(read, write []string) (bool, error) {
	abi, _, e := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if e != 0 || int(abi) < 1 {
		return false, nil
	}
	fs := uint64(0x1fff) // ABI 1: EXECUTE .. MAKE_SYM
	if abi >= 2 {
		fs |= unix.LANDLOCK_ACCESS_FS_REFER
	}
	if abi >= 3 {
		fs |= unix.LANDLOCK_ACCESS_FS_TRUNCATE
	}
	if abi >= 5 {
		fs |= unix.LANDLOCK_ACCESS_FS_IOCTL_DEV
	}
	attr := rulesetAttr{fs: fs}
	size := unsafe.Sizeof(attr)
	if abi >= 4 {
		attr.net = unix.LANDLOCK_ACCESS_NET_BIND_TCP | unix.LANDLOCK_ACCESS_NET_CONNECT_TCP
	} else {
		size = unsafe.Sizeof(attr.fs)
	}
	fd, _, e := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, uintptr(unsafe.Pointer(&attr)), size, 0)
	if e != 0 {
		return false, fmt.Errorf("landlock_create_ruleset: %w", e)
	}
	defer unix.Close(int(fd))

	const readRights = unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_READ_DIR
	writeRights := fs &^ (unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_MAKE_CHAR |
		unix.LANDLOCK_ACCESS_FS_MAKE_BLOCK | unix.LANDLOCK_ACCESS_FS_MAKE_FIFO | unix.LANDLOCK_ACCESS_FS_MAKE_SOCK |
		unix.LANDLOCK_ACCESS_FS_MAKE_SYM | unix.LANDLOCK_ACCESS_FS_IOCTL_DEV)
	add := func(dir string, rights uint64) error {
		d, err := unix.Open(dir, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s for landlock: %w", dir, err)
		}
		defer unix.Close(d)
		pb := unix.LandlockPathBeneathAttr{Allowed_access: rights, Parent_fd: int32(d)}
		if _, _, e := unix.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, fd, unix.LANDLOCK_RULE_PATH_BENEATH,
			uintptr(unsafe.Pointer(&pb)), 0, 0, 0); e != 0 {
			return fmt.Errorf("landlock_add_rule %s: %w", dir, e)
		}
		return nil
	}
	for _, d := range read {
		if err := add(d, readRights); err != nil {
			return false, err
		}
	}
	for _, d := range write {
		if err := add(d, writeRights); err != nil {
			return false, err
		}
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return false, fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", err)
	}
	if _, _, e := unix.Syscall(unix.SYS_LANDLOCK_RESTRICT_SELF, fd, 0, 0); e != 0 {
		return false, fmt.Errorf("landlock_restrict_self: %w", e)
	}
	return true, nil
}
