package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"

	sdk "github.com/doorbook/doorbook/client-sdk"
	"github.com/doorbook/doorbook/internal/deadline"
)

// multi is a repeatable string flag.
type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

// keyValues parses repeated FIELD=VALUE flags.
func keyValues(kvs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%w: --set wants FIELD=VALUE, got %q", errUsage, kv)
		}
		out[k] = v
	}
	return out, nil
}

// newFlags makes a flag set that reports errors instead of exiting.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parse parses args, turning a bad command line into errUsage.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return nil
}

// parseVerb parses a command's own flags (those before its verb) and returns
// the verb and its arguments. With no verb it prints usage and fails; with
// "help" it prints usage and returns no verb.
func parseVerb(fs *flag.FlagSet, args []string, usage string, stderr io.Writer) ([]string, error) {
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fmt.Fprint(stderr, usage)
		return nil, errUsage
	}
	if rest[0] == "help" {
		fmt.Fprint(stderr, usage)
		return nil, nil
	}
	return rest, nil
}

func required(name, value string) error {
	if value == "" {
		return fmt.Errorf("%w: --%s is required", errUsage, name)
	}
	return nil
}

// output prints either JSON or a human rendering.
type output struct {
	json bool
	w    io.Writer
}

func (o output) print(v any, human func(w io.Writer)) error {
	if o.json {
		enc := json.NewEncoder(o.w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(o.w, 0, 4, 2, ' ', 0)
	human(tw)
	return tw.Flush()
}

// isTerminal reports whether f is a terminal (for progress and colours).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// httpClient is the client of the admin and worker verbs. It verifies an
// HTTPS server against the system's roots, plus the CA certificates of
// caFile (PEM) if given: how a district's own CA is trusted.
// timeoutFlags adds the flags that bound every call to the server.
func timeoutFlags(fs *flag.FlagSet) *sdk.Timeouts {
	t := sdk.DefaultTimeouts
	fs.DurationVar(&t.Connect, "connect-timeout", t.Connect, "give up making a connection to the server after this long")
	fs.DurationVar(&t.FirstByte, "answer-timeout", t.FirstByte, "give up when the server has not begun to answer this long after a request")
	fs.DurationVar(&t.Idle, "idle-timeout", t.Idle, "give up when no byte has moved for this long in the middle of a call")
	return &t
}

// httpClient is the client of every call to the server: bounded by
// timeouts, trusting caFile's CAs too if set.
func httpClient(caFile string, timeouts sdk.Timeouts) (*http.Client, error) {
	t := deadline.Timeouts(timeouts)
	if caFile == "" {
		return &http.Client{Transport: deadline.NewTransport(t, nil)}, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("--ca: %w", err)
	}
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%w: --ca %s holds no PEM certificate", errUsage, caFile)
	}
	return &http.Client{Transport: deadline.NewTransport(t, func(tr *http.Transport) {
		tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	})}, nil
}
