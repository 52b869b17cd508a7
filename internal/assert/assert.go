// Package assert holds the few test assertions wsroom's tests use.
package assert

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// Equal fails the test when got and want are not deeply equal.
func Equal[T any](t testing.TB, name string, want, got T) {
	t.Helper()
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("%s: want %#v, got %#v", name, want, got)
	}
}

// Success fails the test when err is not nil.
func Success(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %+v", err)
	}
}

// ErrorIs fails the test when err does not wrap want.
func ErrorIs(t testing.TB, want, err error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("want error wrapping %v, got %v", want, err)
	}
}

// True fails the test when cond is false.
func True(t testing.TB, name string, cond bool) {
	t.Helper()
	if !cond {
		t.Fatalf("%s: want true", name)
	}
}

// Contains fails the test when s does not contain sub.
func Contains(t testing.TB, s, sub string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Fatalf("want %q to contain %q", s, sub)
	}
}
