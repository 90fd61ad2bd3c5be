package adminui

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, path string) (int, string, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	b, _ := io.ReadAll(rec.Body)
	return rec.Code, rec.Header().Get("Content-Type"), string(b)
}

// TestHandler serves the embedded dashboard the way a browser asks for it,
// or, in a binary built without it, says what to do.
func TestHandler(t *testing.T) {
	h := Handler("/admin/")
	if !Available() {
		code, _, body := get(t, h, "/admin/")
		if code != http.StatusNotFound || !strings.Contains(body, "make bundle") {
			t.Fatalf("without the dashboard: %d %q", code, body)
		}
		t.Skip("dashboard not embedded (make bundle); checked the message only")
	}
	code, ctype, body := get(t, h, "/admin/")
	if code != http.StatusOK || !strings.HasPrefix(ctype, "text/html") || !strings.Contains(body, "Socket.IO Admin UI") {
		t.Fatalf("index: %d %s", code, ctype)
	}
	// The icon font comes from the server, not from a CDN.
	if strings.Contains(body, iconFontCDN) || !strings.Contains(body, `href="mdi/css/materialdesignicons.min.css"`) {
		t.Fatalf("index still loads the icon font from the CDN:\n%s", body)
	}
	for _, path := range []string{"/admin/mdi/css/materialdesignicons.min.css", "/admin/mdi/fonts/materialdesignicons-webfont.woff2", "/admin/favicon.png"} {
		if code, _, _ := get(t, h, path); code != http.StatusOK {
			t.Errorf("%s: %d", path, code)
		}
	}
	if code, _, _ := get(t, h, "/admin/js/"); code != http.StatusNotFound {
		t.Errorf("directory listing: %d, want 404", code)
	}
	if code, _, _ := get(t, h, "/admin/../go.mod"); code == http.StatusOK {
		t.Errorf("a path out of the dashboard was served")
	}
}
