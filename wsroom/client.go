package wsroom

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"path"
	"time"
)

// clientFiles holds the browser client and its TypeScript declarations
// (client/wsroom.test.mjs, their Node test, is not served).
//
//go:embed client/wsroom.js client/wsroom.d.ts
var clientFiles embed.FS

// clientFile is one file ClientHandler serves, prepared once.
type clientFile struct {
	body        []byte
	contentType string
	etag        string
}

var clientServed = func() map[string]clientFile {
	files := map[string]string{
		"wsroom.js":   "text/javascript; charset=utf-8",
		"wsroom.d.ts": "application/typescript; charset=utf-8",
	}
	served := make(map[string]clientFile, len(files))
	for name, ctype := range files {
		b, err := clientFiles.ReadFile("client/" + name)
		if err != nil {
			panic("wsroom: embedded client file missing: " + name) // a build mistake, caught by any test
		}
		sum := sha256.Sum256(b)
		served[name] = clientFile{body: b, contentType: ctype, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
	}
	return served
}()

// ClientHandler returns an http.Handler that serves wsroom's browser client:
// wsroom.js, an ES module that speaks the JSON protocol (joins, splits
// batched frames, keeps the member list, pages history and members,
// reconnects with backoff and resumes without losing or repeating a
// message), and wsroom.d.ts, its TypeScript declarations. It serves the
// file named by the last element of the request path, so it works mounted
// on the files themselves or on a directory:
//
//	mux.Handle("GET /wsroom.js", wsroom.ClientHandler())
//	mux.Handle("GET /wsroom.d.ts", wsroom.ClientHandler())
//	// or: mux.Handle("GET /static/wsroom/", wsroom.ClientHandler())
//
// and a page imports it with
//
//	import { Client } from "/wsroom.js";
//
// Any other name gets 404, a method other than GET or HEAD 405. Responses
// carry a strong ETag (a hash of the file) and Cache-Control: no-cache,
// so browsers revalidate on each load and get 304 Not Modified until the
// program is rebuilt with a new client; Range and conditional requests are
// handled as by http.ServeContent. The handler is safe for concurrent use
// and holds no state; the files are embedded in the program.
func ClientHandler() http.Handler {
	return http.HandlerFunc(serveClient)
}

func serveClient(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return
	}
	f, ok := clientServed[path.Base(r.URL.Path)]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", f.contentType)
	h.Set("ETag", f.etag)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
}
