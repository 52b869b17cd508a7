package wsroompg

import "testing"

func TestDefaults(t *testing.T) {
	o, err := (*Options)(nil).withDefaults()
	if err != nil || o.Schema != "wsroom" || o.History != 1000 || o.SkipMigrate {
		t.Fatalf("defaults: %+v, %v", o, err)
	}
	if SchemaVersion != len(migrations) {
		t.Fatalf("SchemaVersion %d, but %d migrations", SchemaVersion, len(migrations))
	}
}
