// Package e2e holds full-stack tests of Doorbook: a real server on a
// loopback port over a SQLite file, real SDK replicas in their own files,
// and the API called through generated clients. It has no non-test code.
package e2e
