package syncengine_test

import (
	"errors"
	"testing"

	se "github.com/doorbook/doorbook/syncengine"
)

func TestCheckAuthority(t *testing.T) {
	v := &se.Visit{ID: "v", VisitorID: "li"}
	tests := []struct {
		name   string
		author string
		kind   se.AmendmentKind
		admin  bool
		ok     bool
	}{
		{"the visitor corrects", "li", se.AmendCorrect, false, true},
		{"the visitor voids", "li", se.AmendVoid, false, true},
		{"a co-worker corrects", "wang", se.AmendCorrect, false, false},
		{"a co-worker voids", "wang", se.AmendVoid, false, false},
		{"an admin voids", "admin", se.AmendVoid, true, false},
		{"a co-worker assigns an item", "wang", se.AmendItemAssign, false, true},
		{"a co-worker resolves an item", "wang", se.AmendItemResolve, false, true},
		{"the visitor closes an item", "li", se.AmendItemClose, false, false},
		{"an admin assigns an item", "admin", se.AmendItemAssign, true, true},
		{"an admin closes an item", "admin", se.AmendItemClose, true, true},
	}
	for _, tt := range tests {
		a := &se.Amendment{AuthorID: tt.author, Kind: tt.kind}
		err := a.CheckAuthority(v, tt.admin)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, se.ErrOutOfScope)) {
			t.Errorf("%s: %v, want allowed %v", tt.name, err, tt.ok)
		}
	}
}
