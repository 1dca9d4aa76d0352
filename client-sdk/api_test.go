package sdk_test

import (
	"bufio"
	"bytes"
	"fmt"
	"go/importer"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
)

const (
	module  = "github.com/doorbook/doorbook"
	sdkPath = module + "/client-sdk"
)

// TestAPINamesNoInternalPackage holds the SDK's exported API to what an app
// can name: no exported function, method, field (embedded ones included),
// variable or constant of package sdk may have a type from a package under
// an internal/ directory, which an app outside this module cannot import.
// Types are followed through the SDK's own and the module's public named
// types (their fields and method sets), so a leak through an embedded type
// or a public package is caught too.
func TestAPINamesNoInternalPackage(t *testing.T) {
	t.Parallel()
	pkg := importCompiled(t, sdkPath)
	w := apiWalker{seen: map[*types.Named]bool{}}
	scope := pkg.Scope()
	for _, name := range scope.Names() {
		if !token.IsExported(name) {
			continue
		}
		switch obj := scope.Lookup(name).(type) {
		case *types.TypeName:
			if obj.IsAlias() {
				w.walk("type "+name, obj.Type())
			} else if n, ok := obj.Type().(*types.Named); ok {
				w.named("type "+name, n)
			}
		default: // func, var, const
			w.walk(name, obj.Type())
		}
	}
	if len(w.leaks) == 0 {
		return
	}
	slices.Sort(w.leaks)
	for _, l := range slices.Compact(w.leaks) {
		t.Error(l)
	}
	t.Log("give the SDK its own type, or use one of a public package (syncengine, fieldwork, gen/...)")
}

// apiWalker visits the types an API exposes.
type apiWalker struct {
	seen  map[*types.Named]bool
	leaks []string
}

// walk visits t, reached from the API through where.
func (w *apiWalker) walk(where string, t types.Type) {
	switch t := t.(type) {
	case *types.Alias:
		w.walk(where, types.Unalias(t))
	case *types.Named:
		w.named(where, t)
	case *types.Pointer:
		w.walk(where, t.Elem())
	case *types.Slice:
		w.walk(where, t.Elem())
	case *types.Array:
		w.walk(where, t.Elem())
	case *types.Chan:
		w.walk(where, t.Elem())
	case *types.Map:
		w.walk(where, t.Key())
		w.walk(where, t.Elem())
	case *types.Signature:
		for i := range t.Params().Len() {
			w.walk(where+" (parameter)", t.Params().At(i).Type())
		}
		for i := range t.Results().Len() {
			w.walk(where+" (result)", t.Results().At(i).Type())
		}
	case *types.Struct:
		for i := range t.NumFields() {
			if f := t.Field(i); f.Exported() || f.Embedded() {
				w.walk(where+"."+f.Name(), f.Type())
			}
		}
	case *types.Interface:
		for i := range t.NumEmbeddeds() {
			w.walk(where+" (embedded)", t.EmbeddedType(i))
		}
		for i := range t.NumMethods() {
			if m := t.Method(i); m.Exported() {
				w.walk(where+"."+m.Name(), m.Type())
			}
		}
	case *types.TypeParam:
		w.walk(where+" (constraint)", t.Constraint())
	case *types.Union:
		for i := range t.Len() {
			w.walk(where, t.Term(i).Type())
		}
	}
}

// named visits a named type: it must not come from an internal package, nor
// may its type arguments; a type of this module is followed into its
// fields and methods.
func (w *apiWalker) named(where string, n *types.Named) {
	for i := range n.TypeArgs().Len() {
		w.walk(where+" (type argument)", n.TypeArgs().At(i))
	}
	pkg := n.Obj().Pkg()
	if pkg == nil { // error
		return
	}
	if strings.Contains(pkg.Path()+"/", "/internal/") {
		w.leaks = append(w.leaks, fmt.Sprintf("%s names %s.%s", where, pkg.Path(), n.Obj().Name()))
		return
	}
	if pkg.Path() != module && !strings.HasPrefix(pkg.Path(), module+"/") {
		return // the standard library's and other modules' own business
	}
	if w.seen[n] {
		return
	}
	w.seen[n] = true
	name := pkg.Name() + "." + n.Obj().Name()
	w.walk(name, n.Underlying())
	var ms *types.MethodSet
	if types.IsInterface(n) {
		ms = types.NewMethodSet(n)
	} else {
		ms = types.NewMethodSet(types.NewPointer(n)) // with promoted methods
	}
	for sel := range ms.Methods() {
		if m := sel.Obj(); m.Exported() {
			w.walk(name+"."+m.Name(), sel.Type())
		}
	}
}

// importCompiled loads the exported API of the package at path from the
// export data the go command compiles for it (built as this test was: same
// race mode and tags, so the build cache already holds its dependencies).
func importCompiled(t *testing.T, path string) *types.Package {
	t.Helper()
	args := []string{"list", "-export", "-deps", "-f", "{{.ImportPath}}\t{{.Export}}"}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "-race", "-msan", "-asan":
				if s.Value == "true" {
					args = append(args, s.Key)
				}
			case "-tags":
				args = append(args, "-tags="+s.Value)
			}
		}
	}
	cmd := exec.Command("go", append(args, path)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	exports := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		p, file, _ := strings.Cut(sc.Text(), "\t")
		exports[p] = file
	}
	imp := importer.ForCompiler(token.NewFileSet(), "gc", func(p string) (io.ReadCloser, error) {
		file := exports[p]
		if file == "" {
			return nil, fmt.Errorf("no export data for %s", p)
		}
		return os.Open(file)
	})
	pkg, err := imp.Import(path)
	if err != nil {
		t.Fatalf("import %s: %v", path, err)
	}
	return pkg
}
