package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
)

func (a *app) restartVerificationCmd() *cobra.Command {
	var wait bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "restart-verification NAME [--wait]",
		Short: "Ask Cloudflare to verify an OAuthClient's client URI host again",
		Long: `Sets the restart-verification annotation to a new value. The operator acts on it only while
Cloudflare's verification is failed or pending: restarting one in progress or verified could
only undo progress, so the command refuses those.`,
		Example: `  # after publishing the TXT record that status.verificationRecord shows
  kubectl cfoauth restart-verification web -n team-a --wait`,
		Args: exactArgs(1, "exactly one OAuthClient name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, err := a.clientAndNamespace()
			if err != nil {
				return err
			}
			key := client.ObjectKey{Namespace: ns, Name: args[0]}
			value := time.Now().UTC().Format(time.RFC3339Nano)
			err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
				o := &v1alpha1.OAuthClient{}
				if err := c.Get(cmd.Context(), key, o); err != nil {
					return err
				}
				v := o.Status.ClientURIVerification
				if v == nil {
					return fmt.Errorf("OAuthClient %s has no client URI verification to restart", key)
				}
				if v.Status != "failed" && v.Status != "pending" {
					return fmt.Errorf("OAuthClient %s: verification is %s; a restart acts only while it is failed or pending", key, v.Status)
				}
				if o.Annotations == nil {
					o.Annotations = map[string]string{}
				}
				o.Annotations[v1alpha1.AnnotationRestartVerification] = value
				return c.Update(cmd.Context(), o)
			})
			if err != nil {
				return err
			}
			_, _ = fmt.Fprintf(a.out, "oauthclient %s: verification restart requested\n", key)
			if !wait {
				return nil
			}
			return a.waitFor(cmd.Context(), c, key, timeout, "Cloudflare to restart verification", func(o *v1alpha1.OAuthClient) (bool, error) {
				if o.Annotations[v1alpha1.AnnotationVerificationRestarted] != value {
					return false, nil
				}
				v := o.Status.ClientURIVerification
				if v == nil || v.Status == "failed" {
					return false, nil
				}
				_, _ = fmt.Fprintf(a.out, "oauthclient %s: verification is %s\n", key, v.Status)
				return true, nil
			})
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the operator restarted verification and Cloudflare reports its new status")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "how long --wait waits")
	return cmd
}
