//go:build unix

package dispatch

import "syscall"

// open reports whether the idle connection can take a request: the server
// has neither closed it nor sent anything unasked (such as a TLS alert).
// It peeks at the socket without waiting.
func (pc *persistConn) open() bool {
	sc, ok := pc.tcp.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var (
		buf     [1]byte
		nothing bool
	)
	err = rc.Read(func(fd uintptr) bool {
		_, _, rerr := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		nothing = rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK
		return true
	})
	return err == nil && nothing
}
