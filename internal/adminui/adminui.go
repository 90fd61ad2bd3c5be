// Package adminui serves the Socket.IO Admin UI dashboard (the built
// ui/dist of the pinned @socket.io/admin-ui npm package, with the icon font
// of @mdi/font that the dashboard otherwise loads from a CDN). `make bundle`
// copies the files into dist/ui (scripts/adminui.sh) and they are embedded
// at build time; a binary built without them still runs and says so.
package adminui

import (
	"bytes"
	"embed"
	"io/fs"
	"net/http"
	"strings"
	"time"
)

//go:embed all:dist
var dist embed.FS

// MissingMessage is logged at start-up when the dashboard is wanted but
// missing, and served in its place.
const MissingMessage = "Socket.IO Admin UI dashboard not embedded: run `make bundle` (it fetches @socket.io/admin-ui from npm) and rebuild; the admin namespace works without it, from a dashboard hosted elsewhere"

// iconFontCDN is where the dashboard's page loads its icon font from; the
// handler serves the embedded copy instead, so that the dashboard works
// without Internet access.
const iconFontCDN = "https://cdn.jsdelivr.net/npm/@mdi/font@latest/css/materialdesignicons.min.css"

// Available reports whether the dashboard was embedded.
func Available() bool {
	_, err := fs.Stat(dist, "dist/ui/index.html")
	return err == nil
}

// built is when the binary started: the modification time served for the
// embedded files, which never change during a run.
var built = time.Now()

// Handler serves the dashboard under prefix (e.g. "/admin/"), or
// MissingMessage with 404 when it was not embedded.
func Handler(prefix string) http.Handler {
	ui, err := fs.Sub(dist, "dist/ui")
	if err != nil || !Available() {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, MissingMessage, http.StatusNotFound)
		})
	}
	index, _ := fs.ReadFile(ui, "index.html")
	index = bytes.Replace(index, []byte(iconFontCDN), []byte("mdi/css/materialdesignicons.min.css"), 1)
	files := http.StripPrefix(prefix, http.FileServerFS(ui))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, prefix)
		if strings.HasSuffix(name, "/") {
			http.NotFound(w, r) // no directory listings
			return
		}
		if name == "" || name == "index.html" {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Cache-Control", "no-cache")
			http.ServeContent(w, r, "index.html", built, bytes.NewReader(index))
			return
		}
		files.ServeHTTP(w, r)
	})
}
