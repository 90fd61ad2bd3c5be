//go:build !unix

package main

import "errors"

// raiseFileLimit reports that the open-file limit is unknown here.
func raiseFileLimit() (uint64, error) {
	return 0, errors.New("no open-file limit on this system")
}
