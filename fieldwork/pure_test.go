package fieldwork_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestPure holds the package (and its conformance suite) to its doc: the
// standard library less database/sql, and syncengine; no SQL driver, no
// storage, no server package.
func TestPure(t *testing.T) {
	t.Parallel()
	for _, dir := range []string{".", "fieldworktest"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, file := range files {
			if strings.HasSuffix(file, "_test.go") {
				continue
			}
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			f, err := parser.ParseFile(token.NewFileSet(), file, src, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range f.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				std := !strings.Contains(strings.Split(path, "/")[0], ".")
				switch {
				case std && !strings.HasPrefix(path, "database/"):
				case path == "github.com/doorbook/doorbook/syncengine", path == "github.com/doorbook/doorbook/fieldwork":
				default:
					t.Errorf("%s imports %s", file, path)
				}
			}
		}
	}
}
