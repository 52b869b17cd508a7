package wsroompg

import (
	"fmt"
	"strings"

	"wsroom.dev/wsroom"
)

// Options configures a Store. The zero value (or a nil *Options) is ready
// to use; each field's documentation ends with its default.
type Options struct {
	// Schema is the PostgreSQL schema that holds the store's tables.
	// Stores with different schemas share nothing, so tests and
	// applications can isolate themselves in one database. Migrate creates
	// it if it is missing. Default "wsroom".
	Schema string

	// History is the most messages kept per room: each Append deletes the
	// messages that fall out of the newest History. Default 1000.
	History int

	// SkipMigrate stops NewStore and OpenStore from running Migrate, for
	// applications that migrate in a separate deployment step or run with
	// a role that may not change the schema. Default false: the
	// constructors migrate.
	SkipMigrate bool
}

// maxIdentifier is PostgreSQL's NAMEDATALEN-1: longer names are truncated
// silently, so two long schema names could name one schema.
const maxIdentifier = 63

// withDefaults returns a copy of o with the defaults filled in, or an
// error wrapping wsroom.ErrBadOptions.
func (o *Options) withDefaults() (Options, error) {
	var c Options
	if o != nil {
		c = *o
	}
	if c.Schema == "" {
		c.Schema = "wsroom"
	}
	if len(c.Schema) > maxIdentifier {
		return c, fmt.Errorf("wsroompg: schema name %q is longer than %d bytes: %w", c.Schema, maxIdentifier, wsroom.ErrBadOptions)
	}
	if strings.ContainsRune(c.Schema, 0) {
		return c, fmt.Errorf("wsroompg: schema name %q holds a NUL byte: %w", c.Schema, wsroom.ErrBadOptions)
	}
	if c.History < 0 {
		return c, fmt.Errorf("wsroompg: negative History %d: %w", c.History, wsroom.ErrBadOptions)
	}
	if c.History == 0 {
		c.History = 1000
	}
	return c, nil
}
