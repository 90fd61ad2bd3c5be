package testutil

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Nginx is an nginx process running the repository's balancer configuration
// (deploy/nginx) in front of chat nodes, the way scripts/cluster.sh runs it.
type Nginx struct {
	Addr string // host:port the balancer listens on
	Dir  string // the prefix directory holding the rendered configuration

	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	logs bytes.Buffer
}

// URL returns http://Addr.
func (n *Nginx) URL() string { return "http://" + n.Addr }

// Logs returns what nginx wrote so far.
func (n *Nginx) Logs() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.logs.String()
}

// listenLine is the balancer's listen directive, as scripts/cluster.sh
// matches it.
var listenLine = regexp.MustCompile(`(?m)^([ \t]*)listen 3000;`)

// RenderNginx writes into dir the configuration scripts/cluster.sh renders:
// deploy/nginx/local.conf and balancer.conf, with the balancer listening on
// listen instead of port 3000, and chat-nodes.inc naming nodes (host:port).
func RenderNginx(t testing.TB, dir, listen string, nodes []string) {
	t.Helper()
	src := filepath.Join(RepoRoot(t), "deploy", "nginx")
	local, err := os.ReadFile(filepath.Join(src, "local.conf"))
	if err != nil {
		t.Fatal(err)
	}
	balancer, err := os.ReadFile(filepath.Join(src, "balancer.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if c := len(listenLine.FindAll(balancer, -1)); c != 1 {
		t.Fatalf("testutil: deploy/nginx/balancer.conf has %d `listen 3000;` lines, want 1", c)
	}
	balancer = listenLine.ReplaceAll(balancer, []byte("${1}listen "+listen+";"))
	var inc strings.Builder
	for _, n := range nodes {
		fmt.Fprintf(&inc, "server %s fail_timeout=2s;\n", n)
	}
	for name, b := range map[string][]byte{"local.conf": local, "balancer.conf": balancer, "chat-nodes.inc": []byte(inc.String())} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// StartNginx runs nginx on a free loopback port in front of nodes and stops
// it when the test ends.
func StartNginx(t testing.TB, nodes []string) *Nginx {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		bin = "/usr/sbin/nginx"
		if _, err := os.Stat(bin); err != nil {
			t.Fatal("testutil: nginx is not installed; run `make setup` (make test does it)")
		}
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		n := &Nginx{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Dir: t.TempDir()}
		RenderNginx(t, n.Dir, n.Addr, nodes)
		if lastErr = n.start(bin); lastErr == nil {
			t.Cleanup(n.stop)
			return n
		}
	}
	t.Fatalf("testutil: cannot start nginx: %v", lastErr)
	return nil
}

func (n *Nginx) start(bin string) error {
	dir := n.Dir + string(filepath.Separator)
	n.cmd = exec.Command(bin, "-p", dir, "-e", "stderr", "-c", filepath.Join(dir, "local.conf"))
	pr, pw := io.Pipe()
	n.cmd.Stdout = pw
	n.cmd.Stderr = pw
	if err := n.cmd.Start(); err != nil {
		return err
	}
	n.done = make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			n.mu.Lock()
			n.logs.WriteString(sc.Text())
			n.logs.WriteByte('\n')
			n.mu.Unlock()
		}
		io.Copy(io.Discard, pr)
	}()
	go func() {
		n.cmd.Wait()
		pw.Close()
		close(n.done)
	}()
	// nginx says nothing once it listens: try to connect until it does.
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-n.done:
			return fmt.Errorf("nginx on %s exited:\n%s", n.Addr, n.Logs())
		default:
		}
		if c, err := net.DialTimeout("tcp", n.Addr, time.Second); err == nil {
			c.Close()
			select {
			case <-n.done: // someone else's listener; nginx failed to bind
				return fmt.Errorf("nginx on %s exited:\n%s", n.Addr, n.Logs())
			default:
				return nil
			}
		}
		if time.Now().After(deadline) {
			n.stop()
			return fmt.Errorf("nginx on %s not listening after 15s:\n%s", n.Addr, n.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop asks nginx for a fast shutdown, then kills it.
func (n *Nginx) stop() {
	select {
	case <-n.done:
		return
	default:
	}
	n.cmd.Process.Signal(os.Interrupt)
	select {
	case <-n.done:
	case <-time.After(5 * time.Second):
		n.cmd.Process.Kill()
		<-n.done
	}
}
