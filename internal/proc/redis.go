package proc

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// RedisOptions configures StartRedis.
type RedisOptions struct {
	Options
	// Binary is the redis-server executable (default "redis-server").
	Binary string
	// Wrap, when set, is put before the command line, e.g. taskset -c 0.
	Wrap []string
}

// StartRedis runs redis-server without persistence on a free loopback port
// and returns once it accepts connections; Addr is its host:port. The port
// is found by listening on port 0 and closing; if another program takes it
// first, another port is tried.
func StartRedis(ctx context.Context, opts RedisOptions) (*Process, error) {
	if opts.Binary == "" {
		opts.Binary = "redis-server"
	}
	var err error
	for range 5 {
		var port int
		if port, err = freePort(); err != nil {
			return nil, err
		}
		var p *Process
		if p, err = startRedisOn(ctx, opts, port); err == nil || !strings.Contains(err.Error(), "in use") {
			return p, err
		}
	}
	return nil, err
}

// startRedisOn runs redis-server on port.
func startRedisOn(ctx context.Context, opts RedisOptions, port int) (*Process, error) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	argv := append(append([]string{}, opts.Wrap...), opts.Binary,
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", os.TempDir(),
		"--daemonize", "no", "--loglevel", "notice")
	return start(ctx, exec.Command(argv[0], argv[1:]...), opts.Options, func(line string) (string, bool) {
		return addr, strings.Contains(line, "Ready to accept connections")
	})
}

// RedisURL returns the redis:// URL of database 0 of a redis-server started
// by StartRedis.
func (p *Process) RedisURL() string { return "redis://" + p.Addr + "/0" }

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, errors.Join(errors.New("proc: no free port"), err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
