package wsroomgin

import (
	"context"
	"net/http"
)

// Value returns the value that gin middleware stored under key, with
// c.Set, before Chat or Echo handled the request r, and whether there was
// one. Hooks call it with their event's Request. The values are copied
// when the handler starts, so what a middleware sets later is not seen.
func Value(r *http.Request, key any) (any, bool) {
	keys, _ := r.Context().Value(keysKey{}).(map[any]any)
	v, ok := keys[key]
	return v, ok
}

// keysKey is the request context key of the gin context's keys.
type keysKey struct{}

func contextWithKeys(ctx context.Context, keys map[any]any) context.Context {
	return context.WithValue(ctx, keysKey{}, keys)
}
