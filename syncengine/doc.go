// Package syncengine owns Doorbook's replicated data model and the rules that
// merge it: hybrid logical clocks, last-writer-wins registers, households and
// persons merged field by field, the add-wins set of category tags, and the
// grow-only set of visits with their amendments. It does no I/O; the server
// and the SDK both merge with it, so a phone and the server can never
// disagree about the outcome of a merge.
//
// # Invariants
//
// Every merge here is a join of a semilattice: for states a, b, c of the same
// row,
//
//	merge(a, b) == merge(b, a)                    (commutative)
//	merge(merge(a, b), c) == merge(a, merge(b, c)) (associative)
//	merge(a, a) == a                              (idempotent)
//
// so replicas that have seen the same changes, in any order and any number
// of times, hold the same state, and no one is asked to resolve a conflict.
// The property and fuzz tests of this package check these laws.
//
// A delta (what a device pushes) is itself a state in which only the written
// fields carry a clock; an unset register (zero clock) loses to any set one.
//
// Registers order writes by Clock: the HLC reading, then the writer's node.
// Two different values under the same clock cannot come from honest
// replicas (a replica never issues a clock twice); should they meet anyway,
// the larger value wins, so the merge stays commutative on any input.
//
// Visits are immutable facts: a visit id names one record forever. A
// correction or a void is an Amendment, itself immutable; the effective view
// of a visit is computed from the visit and all its amendments, so it too
// converges.
package syncengine
