// Package layers holds no code: its test checks the import layering of the
// whole module, so that a dependency running the wrong way fails `go test`
// rather than waiting for a review. The rules are in layers_test.go.
package layers
