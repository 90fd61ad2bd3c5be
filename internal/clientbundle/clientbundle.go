package clientbundle

import (
	"bytes"
	"embed"
	"io/fs"
	"net/http"
	"path"
	"time"
)

//go:embed all:dist
var dist embed.FS

// Files lists the bundle files served under /socket.io/.
var Files = []string{"socket.io.js", "socket.io.js.map", "socket.io.min.js", "socket.io.min.js.map"}

// MissingMessage is logged at start-up and served in place of a missing file.
const MissingMessage = "socket.io client bundle not embedded: run `make bundle` (it fetches socket.io-client from npm) and rebuild"

// Available reports whether the bundle was embedded.
func Available() bool {
	_, err := fs.Stat(dist, "dist/socket.io.js")
	return err == nil
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

// built is when the binary started: the modification time served for the
// embedded files, which never change during a run.
var built = time.Now()

// ServeFile writes the named bundle file, or 404 with MissingMessage.
func ServeFile(w http.ResponseWriter, r *http.Request, name string) {
	b, err := dist.ReadFile("dist/" + name)
	if err != nil {
		http.Error(w, MissingMessage, http.StatusNotFound)
		return
	}
	ctype := "application/javascript; charset=utf-8"
	if path.Ext(name) == ".map" {
		ctype = "application/json; charset=utf-8"
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Cache-Control", "public, max-age=3600")
	http.ServeContent(w, r, name, built, bytes.NewReader(b))
}
