package proc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Options configures Start. The zero value waits 30 s for the address,
// keeps every line and gives the program 10 s to stop.
type Options struct {
	// Wait bounds the wait for the listening line (default 30 s).
	Wait time.Duration
	// Grace is how long Stop waits after SIGTERM before SIGKILL
	// (default 10 s).
	Grace time.Duration
	// Keep is how many of the last output lines Logs returns (0: all).
	Keep int
	// Output, when set, also receives every line the program writes.
	Output io.Writer
	// Group starts the program in a process group of its own and signals
	// the whole group, so that the children of a wrapper (taskset, a
	// shell) stop with it.
	Group bool
}

// Process is a started program that announced its listening address.
type Process struct {
	Addr string    // host:port from the listening line, e.g. 127.0.0.1:41234
	Cmd  *exec.Cmd // the running command; ProcessState is set once Done is closed

	opts Options
	done chan struct{}

	mu    sync.Mutex
	lines []string
	out   io.Writer
}

var listening = regexp.MustCompile(`(?:msg=|INFO )listening addr=(\S+)`)

// Start runs cmd, which must not have been started, with its stdout and
// stderr captured, and returns once the program has printed its listening
// line. ctx bounds that wait only: the program runs until Stop or Kill. If
// the program exits first, or does not announce itself in time, Start stops
// it and returns an error holding its last lines.
func Start(ctx context.Context, cmd *exec.Cmd, opts Options) (*Process, error) {
	return start(ctx, cmd, opts, func(line string) (string, bool) {
		if m := listening.FindStringSubmatch(line); m != nil {
			return m[1], true
		}
		return "", false
	})
}

// start runs cmd and returns once ready recognises a line of its output as
// the announcement of its address.
func start(ctx context.Context, cmd *exec.Cmd, opts Options, ready func(line string) (addr string, ok bool)) (*Process, error) {
	if opts.Wait <= 0 {
		opts.Wait = 30 * time.Second
	}
	if opts.Grace <= 0 {
		opts.Grace = 10 * time.Second
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = w, w
	if opts.Group {
		if cmd.SysProcAttr == nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{}
		}
		cmd.SysProcAttr.Setpgid = true
	}
	err = cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("proc: start %s: %w", cmd.Path, err)
	}
	p := &Process{Cmd: cmd, opts: opts, done: make(chan struct{}), out: opts.Output}
	addr := make(chan string, 1)
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64*1024), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.record(line)
			if a, ok := ready(line); ok {
				select {
				case addr <- a:
				default:
				}
			}
		}
	}()
	go func() {
		cmd.Wait()
		// Lines written just before the exit are kept, unless a child
		// that outlived the program still holds the pipe.
		select {
		case <-drained:
		case <-time.After(2 * time.Second):
			r.Close()
		}
		close(p.done)
	}()

	t := time.NewTimer(opts.Wait)
	defer t.Stop()
	select {
	case p.Addr = <-addr:
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("proc: %s exited before listening (%v):\n%s", cmd.Path, cmd.ProcessState, p.Tail(20))
	case <-t.C:
		err = fmt.Errorf("proc: %s did not report its address in %v", cmd.Path, opts.Wait)
	case <-ctx.Done():
		err = fmt.Errorf("proc: %s: %w", cmd.Path, ctx.Err())
	}
	p.Stop()
	return nil, fmt.Errorf("%w:\n%s", err, p.Tail(20))
}

func (p *Process) record(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lines = append(p.lines, line)
	if p.opts.Keep > 0 && len(p.lines) > 2*p.opts.Keep {
		// Trimming in halves keeps appending cheap.
		p.lines = append(p.lines[:0], p.lines[len(p.lines)-p.opts.Keep:]...)
	}
	if p.out != nil {
		if _, err := io.WriteString(p.out, line+"\n"); err != nil {
			p.out = nil
		}
	}
}

// URL returns "http://" + Addr.
func (p *Process) URL() string { return "http://" + p.Addr }

// Pid returns the program's process id.
func (p *Process) Pid() int { return p.Cmd.Process.Pid }

// Logs returns what the program wrote to stdout and stderr so far, line by
// line (the last Options.Keep lines when that is set).
func (p *Process) Logs() string { return p.Tail(0) }

// Tail returns the last n lines the program wrote (all kept lines when n is
// 0), each ending in a newline.
func (p *Process) Tail(n int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	lines := p.lines
	if p.opts.Keep > 0 && len(lines) > p.opts.Keep {
		lines = lines[len(lines)-p.opts.Keep:]
	}
	if n > 0 && len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

// Done is closed once the program has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the program has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM, waits up to Options.Grace for the program to exit,
// then sends SIGKILL. It returns once the program has exited, with an error
// if it had to be killed. It is safe to call more than once.
func (p *Process) Stop() error {
	if p.Exited() {
		return nil
	}
	p.signal(syscall.SIGTERM)
	t := time.NewTimer(p.opts.Grace)
	defer t.Stop()
	select {
	case <-p.done:
		return nil
	case <-t.C:
	}
	p.Kill()
	return errors.New("proc: " + p.Cmd.Path + " killed: still running " + p.opts.Grace.String() + " after SIGTERM")
}

// Kill ends the program at once with SIGKILL and waits for it to exit.
func (p *Process) Kill() {
	if p.Exited() {
		return
	}
	p.signal(syscall.SIGKILL)
	<-p.done
}

func (p *Process) signal(sig syscall.Signal) {
	if p.opts.Group {
		// The group shares the program's pid as its id.
		syscall.Kill(-p.Cmd.Process.Pid, sig)
		return
	}
	p.Cmd.Process.Signal(sig)
}

// WaitOK polls URL()+path, e.g. "/readyz", every 100 ms until it answers
// 200 OK, for at most limit.
func (p *Process) WaitOK(ctx context.Context, path string, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	last := errors.New("no answer")
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL()+path, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = errors.New(resp.Status)
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("proc: %s%s not OK after %v: %v", p.URL(), path, limit, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
