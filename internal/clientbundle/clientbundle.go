package clientbundle

import (
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"time"
)

//go:embed all:dist
var dist embed.FS

// Files lists the bundle files served under /socket.io/.
var Files = []string{"socket.io.js", "socket.io.js.map", "socket.io.min.js", "socket.io.min.js.map"}

// MissingMessage says that the binary was built without the bundle, and how
// to get one.
const MissingMessage = "socket.io client bundle not embedded: /socket.io/socket.io.js answers 404; " +
	"run `make bundle` (it fetches socket.io-client from npm) and rebuild, " +
	"or serve the files of node_modules/socket.io-client/dist with -client-bundle"

// Bundle is the client bundle a server serves: the embedded copy, or the
// files of a directory.
type Bundle struct {
	fsys     fs.FS
	embedded bool
}

// Open returns the bundle in dir, or the embedded one when dir is empty. A
// directory must hold socket.io.js; the embedded bundle may be missing
// (see Missing).
func Open(dir string) (*Bundle, error) {
	if dir == "" {
		sub, _ := fs.Sub(dist, "dist")
		return &Bundle{fsys: sub, embedded: true}, nil
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("client bundle: %w", err)
	}
	b := &Bundle{fsys: root.FS()}
	if _, err := fs.Stat(b.fsys, Files[0]); err != nil {
		return nil, fmt.Errorf("client bundle: no %s in %s (want a socket.io-client dist directory): %w", Files[0], dir, err)
	}
	return b, nil
}

// Missing returns MissingMessage when there is no bundle to serve, and ""
// when there is one.
func (b *Bundle) Missing() string {
	if _, err := fs.Stat(b.fsys, Files[0]); err != nil {
		return MissingMessage
	}
	return ""
}

// Handle reports whether name (the path below /socket.io/) is a bundle file.
func Handle(name string) bool {
	for _, f := range Files {
		if f == name {
			return true
		}
	}
	return false
}

// started is the modification time served for the embedded files, which
// never change during a run.
var started = time.Now()

// ServeFile writes the named bundle file, or 404 (with MissingMessage when
// the embedded bundle is missing).
func (b *Bundle) ServeFile(w http.ResponseWriter, r *http.Request, name string) {
	f, err := b.fsys.Open(name)
	if err != nil {
		msg := "not found"
		if b.embedded && errors.Is(err, fs.ErrNotExist) {
			msg = MissingMessage
		}
		http.Error(w, msg, http.StatusNotFound)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	ctype := "application/javascript; charset=utf-8"
	if path.Ext(name) == ".map" {
		ctype = "application/json; charset=utf-8"
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Cache-Control", "public, max-age=3600")
	modTime := st.ModTime()
	if modTime.IsZero() {
		modTime = started
	}
	// Embedded files and os.Root files can both seek.
	http.ServeContent(w, r, name, modTime, f.(io.ReadSeeker))
}
