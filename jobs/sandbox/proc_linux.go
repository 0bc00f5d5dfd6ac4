package sandbox

import (
	"os/exec"
	"syscall"
)

// workerProcAttr puts a worker in its own process group and has the kernel
// kill it if the node dies.
func workerProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killWorker kills a worker's process group.
func killWorker(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Process.Kill()
	}
}
