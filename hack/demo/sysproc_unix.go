//go:build unix && !linux

package main

import "syscall"

// childProcAttr puts the operator in its own process group, so that Ctrl-C reaches
// only the demo, which then stops the operator before the control plane.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
