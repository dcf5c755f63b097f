//go:build !unix

package dispatch

// open cannot look at the socket here: a connection the server closed
// while idle fails its next request.
func (pc *persistConn) open() bool { return true }
