package wsroomgin_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/gin-gonic/gin"

	wsroomgin "wsroom.dev/adapters/gin"
	"wsroom.dev/internal/leakcheck"
	"wsroom.dev/internal/wstest"
	"wsroom.dev/wsroom"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	leakcheck.Main(m)
}

// auth is an application's authentication middleware: the user named by
// the X-User header (wstest.UserHeader) is stored with c.Set("user", …);
// without one, 401.
func auth(c *gin.Context) {
	user := c.GetHeader(wstest.UserHeader)
	if user == "" {
		c.AbortWithStatus(http.StatusUnauthorized)
		return
	}
	c.Set("user", user)
	c.Next()
}

// identify names the member after the user the auth middleware stored.
func identify(_ context.Context, e wsroom.IdentifyEvent) (wsroom.IdentifyReply, error) {
	user, _ := wsroomgin.Value(e.Request, "user")
	name, _ := user.(string)
	return wsroom.IdentifyReply{Name: name}, nil
}

// newRooms returns a Server that names members with identify (unless opts
// has an Identify hook), shut down when the test ends.
func newRooms(t *testing.T, opts *wsroom.Options) *wsroom.Server {
	return wstest.New(t, wstest.IdentifyBy(opts, identify))
}
