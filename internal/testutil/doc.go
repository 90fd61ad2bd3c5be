// Package testutil starts the project's real binaries and Node.js scripts for
// integration tests: it builds each command once per test process, runs it on
// a free loopback port chosen by the kernel, and stops it when the test ends.
package testutil
