package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/doorbook/doorbook/server/store/sqlite"
)

// backup copies a server's database, while it serves, to a new file.
func backup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("backup", stderr)
	db := fs.String("db", "", "the server's database `file` (it may be serving)")
	out := fs.String("out", "", "the backup `file` to write (must not exist)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := required("db", *db); err != nil {
		return err
	}
	if err := required("out", *out); err != nil {
		return err
	}
	start := time.Now()
	if err := sqlite.Backup(ctx, *db, *out); err != nil {
		return err
	}
	info, err := os.Stat(*out)
	if err != nil {
		return err
	}
	res := struct {
		Out      string  `json:"out"`
		Bytes    int64   `json:"bytes"`
		Duration float64 `json:"seconds"`
	}{*out, info.Size(), time.Since(start).Seconds()}
	return output{json: *asJSON, w: stdout}.print(res, func(w io.Writer) {
		fmt.Fprintf(w, "backup of %s written to %s (%.1f MB in %.1f s)\n", *db, *out, float64(res.Bytes)/1e6, res.Duration)
	})
}
