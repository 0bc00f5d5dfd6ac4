//go:build !linux

package sandbox

import (
	"os/exec"
	"syscall"
)

func workerProcAttr() *syscall.SysProcAttr { return nil }

func killWorker(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = cmd.Process.Kill()
	}
}
