// Command doorbook is Doorbook's one binary: it serves the API (with demo
// data if asked), drives a worker's replica from a terminal, and calls the
// admin API. Every verb takes --json for scripts. This package only wires
// the server, the SDK and the store together.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `doorbook: offline-first door-to-door visits

Usage:
  doorbook serve  --db FILE --addr HOST:PORT [--demo] [--credentials FILE]
                  [--metrics=false] [--tracing] [--drain-timeout 30s]
  doorbook worker --replica FILE [--json] VERB [flags]
  doorbook admin  (--server URL --token TOKEN | --credentials FILE) [--json] VERB [flags]
  doorbook loadtest [--devices N] [--duration 30s] [--server-process] [--json] [flags]
  doorbook backup --db FILE --out FILE

Run "doorbook serve -h", "doorbook worker help", "doorbook admin help" or
"doorbook loadtest -h" for the verbs and flags of each.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "doorbook:", err)
		}
		os.Exit(exitCode(err))
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stdout, stderr)
	case "worker":
		return worker(ctx, args[1:], stdout, stderr)
	case "admin":
		return admin(ctx, args[1:], stdout, stderr)
	case "loadtest":
		return loadtest(ctx, args[1:], stdout, stderr)
	case "backup":
		return backup(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("%w: unknown command %q", errUsage, args[0])
}

// errUsage marks a command line that could not be understood (exit code 2).
var errUsage = errors.New("usage")

func exitCode(err error) int {
	if errors.Is(err, errUsage) || errors.Is(err, flag.ErrHelp) {
		return 2
	}
	return 1
}
