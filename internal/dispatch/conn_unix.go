//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package dispatch

import (
	"net"
	"syscall"
)

// socketQuiet reports whether nothing waits on c's socket: no data and no
// end of stream. It peeks without waiting.
func socketQuiet(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var (
		buf   [1]byte
		quiet bool
	)
	err = rc.Read(func(fd uintptr) bool {
		_, _, rerr := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		quiet = rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK
		return true
	})
	return err == nil && quiet
}
