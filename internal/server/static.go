package server

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"strings"
	"time"
)

// staticFiles serves a page directory: "/" gives chatClient.html (or
// index.html when there is none) and every other regular file is served as
// it is. Dotfiles, directories and anything outside the root (including
// through symlinks) are not served.
type staticFiles struct {
	fsys  fs.FS
	index string
}

// newStaticFiles serves dir, or the embedded page when dir is empty.
func newStaticFiles(dir string, embedded fs.FS) (*staticFiles, error) {
	fsys := embedded
	if dir != "" {
		root, err := os.OpenRoot(dir)
		if err != nil {
			return nil, err
		}
		fsys = root.FS()
	}
	for _, index := range []string{"chatClient.html", "index.html"} {
		if st, err := fs.Stat(fsys, index); err == nil && st.Mode().IsRegular() {
			return &staticFiles{fsys: fsys, index: index}, nil
		}
	}
	return nil, errors.New("no chatClient.html or index.html in the page directory")
}

func (h *staticFiles) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	if name == "" {
		name = h.index
	}
	for seg := range strings.SplitSeq(name, "/") {
		if strings.HasPrefix(seg, ".") {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
	}
	if !fs.ValidPath(name) {
		http.Error(w, "bad path", http.StatusBadRequest)
		return
	}
	f, err := h.fsys.Open(name)
	if err != nil {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if rs, ok := f.(io.ReadSeeker); ok {
		http.ServeContent(w, r, name, st.ModTime(), rs)
		return
	}
	b, err := io.ReadAll(f)
	if err != nil {
		http.Error(w, "read error", http.StatusInternalServerError)
		return
	}
	modTime := st.ModTime()
	if modTime.IsZero() {
		modTime = started
	}
	http.ServeContent(w, r, name, modTime, bytes.NewReader(b))
}

var started = time.Now()
