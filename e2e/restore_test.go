package e2e

import (
	"context"
	"testing"
)

// TestServerRestoredFromBackup: the server's database is restored from an
// older backup, so a phone's cursor lies past the server's feed. The phone
// is told its cursor is stale, starts over from the server's state, and
// pushes its unsent change and, again, what it had pushed since the backup:
// it ends equal to the server, and nothing it recorded is lost.
func TestServerRestoredFromBackup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 1)
	w, _ := e.worker("li", e.Grids[0])
	r := e.device("li", w)
	mustSync(t, r)
	if _, err := r.RegisterHousehold(ctx, e.Grids[0], map[string]string{"head_name": "kept"}); err != nil {
		t.Fatal(err)
	}
	mustSync(t, r)

	restore := backupAndRestore(t, e)

	workAfterBackup(t, r, e.Grids[0])

	restore()

	unsent, err := r.RegisterHousehold(ctx, e.Grids[0], map[string]string{"head_name": "unsent"})
	if err != nil {
		t.Fatal(err)
	}
	rep := mustSync(t, r)
	if !rep.Reset {
		t.Fatalf("sync after the restore did not start over: %+v", rep)
	}
	server := e.serverState(e.Grids[0])
	assertSameState(t, "replica vs restored server", server, dump(t, r))
	var names []string
	for _, h := range server.Households {
		names = append(names, h.HeadName.Value)
	}
	if len(server.Households) != 3 || len(server.Visits) != 5 {
		t.Errorf("server households %v and %d visits, want the one before the backup, the one after it with its 5 visits, and the unsent one (%s)",
			names, len(server.Visits), unsent)
	}
}
