//go:build cgo

package dispatch

// cgoResolver reports whether this test binary has the C library's resolver.
const cgoResolver = true
