package demo_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/doorbook/doorbook/server/demo"
	"github.com/doorbook/doorbook/server/service"
	"github.com/doorbook/doorbook/server/store/sqlite"
)

// BenchmarkSeed measures `doorbook serve --demo`'s seed: the org tree, six
// workers and 3,000 households with persons and tags imported into a fresh
// SQLite file through the store.
func BenchmarkSeed(b *testing.B) {
	ctx := b.Context()
	households := 0
	for b.Loop() {
		b.StopTimer()
		backend, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "s.db"))
		if err != nil {
			b.Fatal(err)
		}
		st := service.New(backend)
		admin, _, err := st.CreateAdmin(ctx, "admin", "")
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		s, err := demo.Seed(ctx, st, admin, 1, time.Now(), time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		households += s.Households
		st.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(households)/b.Elapsed().Seconds(), "households/s")
}
