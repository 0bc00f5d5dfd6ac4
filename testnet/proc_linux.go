package testnet

import "syscall"

// sysProcAttr starts every daemon in a session of its own. A detached one
// so outlives the caller and its terminal; an attached one also gets
// SIGTERM when the caller dies, and Ctrl-C reaches only the caller, which
// stops the nodes in order. A session of its own is also a scheduling
// group of its own where the kernel groups by session (autogroup, on by
// default): each node, with its sandbox processes, then gets a fair share
// of the cores, as it would on a machine of its own, rather than every
// thread of every node competing in one group (docs/performance.md,
// "2026-11-26, 23:20 on").
func sysProcAttr(detached bool) *syscall.SysProcAttr {
	if detached {
		return &syscall.SysProcAttr{Setsid: true}
	}
	return &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGTERM}
}
