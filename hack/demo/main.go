// Command demo runs the operator end to end on this machine, with nothing but Go: it
// builds the operator, starts the source-built kube-apiserver and etcd the tests use,
// installs the CRD, starts the Cloudflare emulator, runs the operator against both as a
// child process (with the RBAC of config/rbac, not as cluster-admin), applies
// config/samples, and shows the OAuthClients until they are Ready.
//
//	make demo                     # stays up until Ctrl-C; explore with kubectl
//	make demo DEMO_ARGS=--once    # exits 0 once every sample is Ready (a smoke test)
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
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "demo:", err)
		}
		stop()
		os.Exit(1)
	}
}

// options are the demo's flags.
type options struct {
	once        bool
	timeout     time.Duration
	verifyAfter time.Duration
	namespace   string
	dir         string
	binary      string
}

func parseOptions(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	fs.BoolVar(&o.once, "once", false, "exit once every sample is Ready (status 0), or when --timeout passes (status 1)")
	fs.DurationVar(&o.timeout, "timeout", 2*time.Minute, "how long the samples may take to become Ready")
	fs.DurationVar(&o.verifyAfter, "verify-after", 5*time.Second, "how long the emulator takes to verify a client URI's DNS record")
	fs.StringVar(&o.namespace, "namespace", "demo", "namespace for the samples")
	fs.StringVar(&o.dir, "dir", "bin/demo", "directory for the operator binary, kubeconfigs and the operator's log")
	fs.StringVar(&o.binary, "manager-binary", "", "run this operator binary instead of building cmd/manager")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.timeout <= 0 || o.verifyAfter < 0 {
		return nil, errors.New("--timeout must be positive and --verify-after not negative")
	}
	return o, nil
}

// run is the whole demo; it returns once everything it started has stopped.
func run(ctx context.Context, args []string, out io.Writer) (err error) {
	o, err := parseOptions(args, out)
	if err != nil {
		return err
	}
	d := &demo{opts: o, out: out, start: time.Now()}
	defer func() { err = errors.Join(err, d.stop()) }()
	if err := d.setUp(ctx); err != nil {
		return err
	}
	if err := d.waitReady(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // interrupted before the samples were Ready
		}
		return err
	}
	if err := d.report(ctx); err != nil {
		return err
	}
	if o.once {
		return nil
	}
	d.printf("\nPress Ctrl-C to stop the operator, the emulator and the control plane.\n")
	return d.serve(ctx)
}
