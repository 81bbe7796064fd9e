package postgres

import (
	"context"
	"testing"
)

func TestSmoke(t *testing.T) {
	s := openTest(t, nil)
	v, err := s.SchemaVersion(context.Background())
	if err != nil || v != 8 {
		t.Fatal(v, err)
	}
}
