package layers

import (
	"errors"
	"fmt"
	"go/build"
	"go/token"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/doorbook/doorbook"

// pkg is a package of the module and what its files import.
type pkg struct {
	path string // import path
	// imports are those of its non-test files (what its binary or
	// importers get); testImports those of its _test.go files, in the
	// package or beside it.
	imports, testImports map[string][]string // import → files importing it
}

// sqlImports are the packages that speak SQL: the command reaches storage
// only through server/store and its backends.
var sqlImports = []string{
	"database/sql",
	"modernc.org/sqlite",
	"github.com/mattn/go-sqlite3",
	"github.com/jackc/pgx",
	"github.com/lib/pq",
	module + "/internal/sqlitex",
	module + "/internal/statedb",
}

// under reports whether path is root or a package below it.
func under(path, root string) bool {
	return path == root || strings.HasPrefix(path, root+"/")
}

// violations applies the rules to the module's packages:
//
//   - no package under internal/ imports server/, client-sdk/ or cmd/
//     (tests included: internal/ sits below them all);
//   - no package imports anything under cmd/ (commands are wiring);
//   - no non-test file of a command imports database/sql or a SQL driver
//     (or the module's own SQL helpers): storage is reached through
//     server/store. A command's tests may read the files it leaves.
func violations(pkgs []pkg) []string {
	var out []string
	for _, p := range pkgs {
		all := map[string][]string{}
		for imp, files := range p.imports {
			all[imp] = append(all[imp], files...)
		}
		for imp, files := range p.testImports {
			all[imp] = append(all[imp], files...)
		}
		for _, imp := range slices.Sorted(maps.Keys(all)) {
			files := strings.Join(all[imp], ", ")
			if under(p.path, module+"/internal") {
				for _, upper := range []string{"/server", "/client-sdk", "/cmd"} {
					if under(imp, module+upper) {
						out = append(out, fmt.Sprintf("%s imports %s (%s): internal/ is below %s/", p.path, imp, files, upper[1:]))
					}
				}
			}
			if under(imp, module+"/cmd") && imp != p.path {
				out = append(out, fmt.Sprintf("%s imports %s (%s): nothing imports a command", p.path, imp, files))
			}
		}
		if under(p.path, module+"/cmd") {
			for imp, files := range p.imports {
				for _, s := range sqlImports {
					if under(imp, s) {
						out = append(out, fmt.Sprintf("%s imports %s (%s): a command reaches storage through server/store", p.path, imp, strings.Join(files, ", ")))
					}
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// modulePackages reads the imports of every package of the module rooted
// at root (with go/build, as the go command selects files for this
// platform), skipping testdata, hidden directories and nested modules.
func modulePackages(t *testing.T, root string) []pkg {
	t.Helper()
	var pkgs []pkg
	err := filepath.WalkDir(root, func(dir string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		name := d.Name()
		if dir != root {
			if name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				return filepath.SkipDir
			}
		}
		bp, err := build.Default.ImportDir(dir, 0)
		if _, none := errors.AsType[*build.NoGoError](err); none {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", dir, err)
		}
		rel, err := filepath.Rel(root, dir)
		if err != nil {
			return err
		}
		p := pkg{path: module, imports: map[string][]string{}, testImports: map[string][]string{}}
		if rel != "." {
			p.path += "/" + filepath.ToSlash(rel)
		}
		add := func(m map[string][]string, pos map[string][]token.Position) {
			for imp, ps := range pos {
				for _, at := range ps {
					m[imp] = append(m[imp], filepath.ToSlash(filepath.Join(rel, filepath.Base(at.Filename))))
				}
			}
		}
		add(p.imports, bp.ImportPos)
		add(p.testImports, bp.TestImportPos)
		add(p.testImports, bp.XTestImportPos)
		pkgs = append(pkgs, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

// TestLayers holds the module to its layering (see violations).
func TestLayers(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "go.mod")); err != nil || !strings.HasPrefix(string(b), "module "+module+"\n") {
		t.Fatalf("%s is not the root of %s: %v", root, module, err)
	}
	pkgs := modulePackages(t, root)
	if len(pkgs) < 10 {
		t.Fatalf("found %d packages under %s: the walk is broken", len(pkgs), root)
	}
	for _, v := range violations(pkgs) {
		t.Error(v)
	}
}

// TestLayerRules: each rule catches what it is about, and lets pass what
// it is not.
func TestLayerRules(t *testing.T) {
	t.Parallel()
	p := func(path string, imports, testImports []string) pkg {
		m := func(imps []string, file string) map[string][]string {
			out := map[string][]string{}
			for _, imp := range imps {
				out[imp] = []string{file}
			}
			return out
		}
		return pkg{path: module + "/" + path, imports: m(imports, "x.go"), testImports: m(testImports, "x_test.go")}
	}
	for _, tc := range []struct {
		name string
		pkg  pkg
		bad  bool
	}{
		{"internal imports server", p("internal/demo", []string{module + "/server/store"}, nil), true},
		{"internal test imports a backend", p("internal/demo", nil, []string{module + "/server/store/sqlite"}), true},
		{"internal imports the SDK", p("internal/wire", []string{module + "/client-sdk"}, nil), true},
		{"internal imports internal", p("internal/wire", []string{module + "/internal/sqlitex", module + "/syncengine"}, nil), false},
		{"server imports internal", p("server/demo", []string{module + "/internal/demo", module + "/server/store"}, nil), false},
		{"serverless prefix is not server", p("internal/x", []string{module + "/serverless"}, nil), false},
		{"a library imports a command", p("loadtest", []string{module + "/cmd/doorbook"}, nil), true},
		{"a test imports a command", p("e2e", nil, []string{module + "/cmd/doorbook"}), true},
		{"command imports database/sql", p("cmd/doorbook", []string{"database/sql"}, nil), true},
		{"command imports the driver", p("cmd/doorbook", []string{"modernc.org/sqlite"}, nil), true},
		{"command imports sqlitex", p("cmd/doorbook", []string{module + "/internal/sqlitex"}, nil), true},
		{"command imports the store", p("cmd/doorbook", []string{module + "/server/store", module + "/server/store/sqlite"}, nil), false},
		{"command's test reads files", p("cmd/doorbook", nil, []string{"database/sql", "modernc.org/sqlite"}), false},
		{"library imports database/sql", p("server/store/sqlite", []string{"database/sql"}, nil), false},
	} {
		got := violations([]pkg{tc.pkg})
		if (len(got) > 0) != tc.bad {
			t.Errorf("%s: violations %q; want any: %v", tc.name, got, tc.bad)
		}
	}
}

// replacing matches a statement that replaces a row of a table whose
// triggers keep the visit sums and the special links: with recursive
// triggers off (SQLite's default), REPLACE deletes the old row without
// running its DELETE triggers, and those would go stale.
var replacing = regexp.MustCompile(`(?i)\bREPLACE\s+INTO\s+(visits|visit_households|visit_amendments)\b`)

// TestTriggeredTablesAreNotReplaced: no code replaces a row of the tables
// the sums' and special links' triggers follow.
func TestTriggeredTablesAreNotReplaced(t *testing.T) {
	t.Parallel()
	if !replacing.MatchString("INSERT OR REPLACE INTO visits (id) VALUES (?)") || replacing.MatchString("INSERT OR REPLACE INTO visit_special_links") {
		t.Fatal("the pattern does not tell a replaced visit from the special links")
	}
	eachSource(t, func(rel string, b []byte) {
		for _, m := range replacing.FindAll(b, -1) {
			t.Errorf("%s: %s", rel, m)
		}
	})
}

// eachSource calls fn with every Go and SQL file of the module but tests
// (its path from the module's root, with slashes).
func eachSource(t *testing.T, fn func(rel string, b []byte)) {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	files := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules" || d.Name() == "scratch") {
			return filepath.SkipDir
		}
		if d.IsDir() || strings.HasSuffix(path, "_test.go") || !strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, ".sql") {
			return nil
		}
		files++
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		fn(filepath.ToSlash(rel), b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 100 {
		t.Fatalf("read %d files under %s: the walk is broken", files, root)
	}
}

// inserting matches a statement that inserts a visit's row or its links.
var inserting = regexp.MustCompile(`(?i)\bINSERT\s+(OR\s+\w+\s+)?INTO\s+(main\.)?(visits|visit_households)\b`)

// storing matches a call of statedb's functions that store a visit, by
// whether the database keeps special links ("Linked").
var storing = regexp.MustCompile(`statedb\.(Insert|Replace|Apply)(Linked)?(Visit|Bundle)\b`)

// TestVisitsStoredByStatedb: a visit's row and links come into SQLite only
// through statedb's InsertVisit and its kin, which sum them and link them
// (no trigger does since SchemaV8), and each store calls the kind its
// database needs: the server's SQLite keeps special links, a phone's not.
func TestVisitsStoredByStatedb(t *testing.T) {
	t.Parallel()
	if !inserting.MatchString("INSERT INTO visit_households (household_id)") || inserting.MatchString("INSERT INTO visit_sums") ||
		!storing.MatchString("statedb.InsertLinkedVisit(") || storing.MatchString("statedb.InsertAmendment(") {
		t.Fatal("the patterns do not tell the statements and calls apart")
	}
	eachSource(t, func(rel string, b []byte) {
		// PostgreSQL keeps its sums its own way.
		if !strings.HasPrefix(rel, "internal/statedb/") && !strings.HasPrefix(rel, "server/store/postgres/") {
			for _, m := range inserting.FindAll(b, -1) {
				t.Errorf("%s: %s: only statedb stores a visit", rel, m)
			}
		}
		for _, m := range storing.FindAllSubmatch(b, -1) {
			if linked, server := len(m[2]) > 0, strings.HasPrefix(rel, "server/store/sqlite/"); linked != server {
				t.Errorf("%s: %s: the server's SQLite keeps special links, a phone's not", rel, m[0])
			}
		}
	})
}

// bareLimit matches a LIMIT whose count is a bare SQLite parameter, in
// any of its forms ("LIMIT ?", "LIMIT ?2", "LIMIT (:n)", "LIMIT @n",
// "LIMIT $n"), but not PostgreSQL's "LIMIT $1".
var bareLimit = regexp.MustCompile(`(?i)\bLIMIT\s+\(*\s*(\?|[:@]\w|\$[a-z_])`)

// TestLimitsRunAsPrepared: no SQLite statement takes its LIMIT's count as
// a bare parameter, which makes SQLite prepare the statement again at
// every run (see package sqlitex): a pull's read of the feed spent half its
// time parsing. The count goes behind a unary plus, "LIMIT +?".
func TestLimitsRunAsPrepared(t *testing.T) {
	t.Parallel()
	for _, bare := range []string{"ORDER BY id LIMIT ?", "limit ?2", "LIMIT (?)", "LIMIT :n", "LIMIT @n", "LIMIT $n"} {
		if !bareLimit.MatchString(bare) {
			t.Fatalf("the pattern misses %q", bare)
		}
	}
	for _, fine := range []string{"LIMIT +?", "LIMIT +?2", "LIMIT 1", "LIMIT $1"} {
		if bareLimit.MatchString(fine) {
			t.Fatalf("the pattern takes %q for a bare parameter", fine)
		}
	}
	eachSource(t, func(rel string, b []byte) {
		for _, m := range bareLimit.FindAll(b, -1) {
			t.Errorf("%s: %q: write the count as +?, or SQLite prepares the statement at every run", rel, m)
		}
	})
}
