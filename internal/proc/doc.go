// Package proc runs a server program for the tests and the tools: it starts
// the program, keeps what it writes, waits for the log line that announces
// its address ("msg=listening addr=HOST:PORT", as log/slog writes it with a
// text handler or by default), and stops it.
package proc
