package postgres

import "github.com/doorbook/doorbook/syncengine"

// tracked counts a visit's findings that are tracked items.
func tracked(v *syncengine.Visit) int {
	n := 0
	for _, f := range v.Findings {
		if f.Kind.Tracked() {
			n++
		}
	}
	return n
}
