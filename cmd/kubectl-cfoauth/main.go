// Command kubectl-cfoauth is a kubectl plugin for cloudflare-oauth-operator: it imports
// an account's existing Cloudflare OAuth clients as OAuthClient manifests, shows what
// needs doing, and rotates secrets or restarts verification from the command line.
//
// Install it on PATH as kubectl-cfoauth (go install, or Krew) and run `kubectl cfoauth`.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return &usageError{fmt.Errorf(format, args...)} }

// app is what every subcommand shares: the kubeconfig flags, the output streams and
// the environment (for CLOUDFLARE_API_TOKEN).
type app struct {
	kube   *genericclioptions.ConfigFlags
	out    io.Writer
	errOut io.Writer
	getenv func(string) string
}

// run executes one command line and returns the process's exit status.
func run(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	a := &app{kube: genericclioptions.NewConfigFlags(true), out: stdout, errOut: stderr, getenv: getenv}
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	var usage *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &usage):
		_, _ = fmt.Fprintf(stderr, "error: %v\nRun 'kubectl cfoauth %s --help' for usage.\n", err, subcommand(root, args))
		return exitUsage
	default:
		_, _ = fmt.Fprintf(stderr, "error: %v\n", err)
		return exitError
	}
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "cfoauth",
		Short: "Work with Cloudflare OAuth clients managed by cloudflare-oauth-operator",
		Long: `kubectl cfoauth imports an account's existing Cloudflare OAuth clients as OAuthClient
manifests, shows which objects need a person and what each needs, and rotates secrets or
restarts client URI verification.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		// Cobra names a command by the first word of Use; a plugin is "kubectl cfoauth".
		Annotations: map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl cfoauth"},
	}
	a.kube.AddFlags(root.PersistentFlags())
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	root.AddCommand(a.importCmd(), a.statusCmd(), a.rotateCmd(), a.restartVerificationCmd())
	for _, c := range root.Commands() {
		c.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	}
	root.Args = func(_ *cobra.Command, args []string) error {
		if len(args) > 0 {
			return usagef("unknown command %q", args[0])
		}
		return nil
	}
	root.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	return root
}

// subcommand names the subcommand of a command line, for the usage hint.
func subcommand(root *cobra.Command, args []string) string {
	if c, _, err := root.Find(args); err == nil && c != root {
		return c.Name()
	}
	return ""
}

// exactArgs is cobra.ExactArgs with a usage error.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("want %s, got %d arguments", what, len(args))
		}
		return nil
	}
}

// kubeClient returns a client for the cluster of the kubeconfig flags.
func (a *app) kubeClient() (client.Client, error) {
	cfg, err := a.kube.ToRESTConfig()
	if err != nil {
		return nil, fmt.Errorf("reading the kubeconfig: %w", err)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	return client.New(cfg, client.Options{Scheme: scheme})
}

// namespace is the -n namespace, or the kubeconfig context's.
func (a *app) namespace() (string, error) {
	ns, _, err := a.kube.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return "", fmt.Errorf("reading the namespace from the kubeconfig: %w", err)
	}
	return ns, nil
}
