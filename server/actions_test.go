package server

import "testing"

// TestEveryProcedureHasARule: a procedure that needs a token and has no
// authz action is refused to everyone; this says which one was forgotten.
func TestEveryProcedureHasARule(t *testing.T) {
	for path, p := range procedures() {
		if _, ok := actions[path]; !ok && !p.Public {
			t.Errorf("procedure %s has no authz action (server/actions.go)", path)
		}
	}
	for path := range actions {
		if _, ok := procedures()[path]; !ok {
			t.Errorf("actions names %s, which is no procedure", path)
		}
	}
}
