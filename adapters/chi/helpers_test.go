package wsroomchi_test

import (
	"context"
	"net/http"
	"testing"

	"wsroom.dev/internal/leakcheck"
	"wsroom.dev/internal/wstest"
	"wsroom.dev/wsroom"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// userKey is where the application's auth middleware puts the user.
type userKey struct{}

// auth is an application's authentication middleware: the user named by
// the X-User header (wstest.UserHeader) goes into the request's context;
// without one, 401.
func auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user := r.Header.Get(wstest.UserHeader)
		if user == "" {
			http.Error(w, "log in", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, user)))
	})
}

// identify names the member after the user the auth middleware found.
func identify(_ context.Context, e wsroom.IdentifyEvent) (wsroom.IdentifyReply, error) {
	user, _ := e.Request.Context().Value(userKey{}).(string)
	return wsroom.IdentifyReply{Name: user}, nil
}

// newRooms returns a Server that names members with identify (unless opts
// has an Identify hook), shut down when the test ends.
func newRooms(t *testing.T, opts *wsroom.Options) *wsroom.Server {
	return wstest.New(t, wstest.IdentifyBy(opts, identify))
}
