package testnet

import "syscall"

// sysProcAttr puts a detached daemon in its own session so that it
// outlives the caller and its terminal; an attached one gets SIGTERM when
// the caller dies.
func sysProcAttr(detached bool) *syscall.SysProcAttr {
	if detached {
		return &syscall.SysProcAttr{Setsid: true}
	}
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
