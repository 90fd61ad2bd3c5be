package integration

import (
	"testing"

	"siogo/internal/testutil"
)

// startRefServer runs testdata/node/refserver.js on a kernel-chosen port
// and returns its base URL; the process ends with the test.
func startRefServer(t *testing.T, args ...string) string {
	t.Helper()
	return testutil.StartNodeServer(t, "testdata/node/refserver.js", append([]string{"0"}, args...)...)
}
