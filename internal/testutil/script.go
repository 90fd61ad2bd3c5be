package testutil

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// Script is a running Node.js script that a test drives: it takes JSON
// commands on stdin and prints JSON lines on stdout, and {"cmd":"exit"}
// ends it.
type Script struct {
	t      testing.TB
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	exited chan struct{}

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every line
	lines   []json.RawMessage
	stderr  strings.Builder
}

// StartScript runs `node script args...` from the repository root. It
// exits when the test ends.
func StartScript(t testing.TB, script string, args ...string) *Script {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Script{t: t, name: script, cmd: NodeCommand(ctx, t, script, args...),
		exited: make(chan struct{}), changed: make(chan struct{})}
	stdin, err := s.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.stdin = stdin
	s.cmd.Stderr = writerFunc(func(p []byte) (int, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.stderr.Write(p)
	})
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64*1024), 8<<20)
		for sc.Scan() {
			line := append(json.RawMessage(nil), sc.Bytes()...)
			s.mu.Lock()
			if json.Valid(line) {
				s.lines = append(s.lines, line)
			} else {
				fmt.Fprintf(&s.stderr, "unparsable line: %s\n", line)
			}
			close(s.changed)
			s.changed = make(chan struct{})
			s.mu.Unlock()
		}
		s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		s.Stop()
		cancel()
		<-s.exited
	})
	return s
}

// Send writes one command.
func (s *Script) Send(cmd any) {
	b, _ := json.Marshal(cmd)
	s.stdin.Write(append(b, '\n'))
}

// Stop sends {"cmd":"exit"} and waits up to 5 s for the script to exit.
func (s *Script) Stop() {
	s.Send(map[string]any{"cmd": "exit"})
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
	}
}

// Lines returns the lines printed so far.
func (s *Script) Lines() []json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]json.RawMessage(nil), s.lines...)
}

// WaitFor waits until cond holds for the lines printed so far and returns
// them, failing the test after timeout or if the script exits.
func (s *Script) WaitFor(timeout time.Duration, desc string, cond func([]json.RawMessage) bool) []json.RawMessage {
	s.t.Helper()
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		lines, changed := s.lines, s.changed
		s.mu.Unlock()
		if cond(lines) {
			return append([]json.RawMessage(nil), lines...)
		}
		select {
		case <-changed:
		case <-s.exited:
			s.t.Fatalf("testutil: %s exited while waiting for %s:\n%s", s.name, desc, s.Dump())
		case <-deadline:
			s.t.Fatalf("testutil: timed out after %v waiting for %s in %s:\n%s", timeout, desc, s.name, s.Dump())
		}
	}
}

// Dump returns the lines and the standard error so far, for failure
// messages.
func (s *Script) Dump() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for _, l := range s.lines {
		if len(l) > 600 {
			l = append(l[:600:600], "..."...)
		}
		b.Write(l)
		b.WriteByte('\n')
	}
	b.WriteString(s.stderr.String())
	return b.String()
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
