package main

import "syscall"

// ipBindAddressNoPort is IP_BIND_ADDRESS_NO_PORT from linux/in.h.
const ipBindAddressNoPort = 24

// bindNoPort lets a dial with a fixed source address defer the choice of the
// source port to connect(), so a port is only unique per destination and
// the ephemeral range is not used up by bind() alone.
func bindNoPort(network, address string, c syscall.RawConn) error {
	return c.Control(func(fd uintptr) {
		// Best effort: without it the dial still works, with a bind-time port.
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
	})
}
