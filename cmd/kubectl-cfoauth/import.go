package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// importCmd prints one OAuthClient manifest per remote client (owned by the import
// work: see the README's "kubectl plugin" section).
func (a *app) importCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "import",
		Short: "Print OAuthClient manifests for an account's existing Cloudflare clients",
		RunE:  func(*cobra.Command, []string) error { return errors.New("not implemented yet") },
	}
}
