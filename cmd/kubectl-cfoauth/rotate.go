package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
)

var secretGVK = corev1.SchemeGroupVersion.WithKind("Secret")

func (a *app) rotateCmd() *cobra.Command {
	var overlap time.Duration
	var wait bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "rotate NAME [--overlap 24h] [--wait]",
		Short: "Rotate an OAuthClient's client secret now (a new spec.secretRotation.rotationID)",
		Example: `  # rotate, keep the previous secret valid for an hour, and wait for the new one to be stored
  kubectl cfoauth rotate web -n team-a --overlap 1h --wait`,
		Args: exactArgs(1, "exactly one OAuthClient name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if overlap < 0 {
				return usagef("--overlap must not be negative")
			}
			c, ns, err := a.clientAndNamespace()
			if err != nil {
				return err
			}
			key := client.ObjectKey{Namespace: ns, Name: args[0]}
			id := "kubectl-cfoauth-" + time.Now().UTC().Format("20060102T150405Z")
			err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
				o := &v1alpha1.OAuthClient{}
				if err := c.Get(cmd.Context(), key, o); err != nil {
					return err
				}
				if o.Spec.TokenEndpointAuthMethod != nil && *o.Spec.TokenEndpointAuthMethod == v1alpha1.AuthMethodNone {
					return fmt.Errorf("OAuthClient %s is a PKCE client (tokenEndpointAuthMethod: none): it has no secret to rotate", key)
				}
				if o.Spec.SecretRotation == nil {
					o.Spec.SecretRotation = &v1alpha1.SecretRotation{}
				}
				o.Spec.SecretRotation.RotationID = id
				if cmd.Flags().Changed("overlap") {
					o.Spec.SecretRotation.Overlap = &metav1.Duration{Duration: overlap}
				}
				return c.Update(cmd.Context(), o)
			})
			if err != nil {
				return fmt.Errorf("asking for a rotation of OAuthClient %s: %w", key, err)
			}
			_, _ = fmt.Fprintf(a.out, "oauthclient %s: rotation %s requested\n", key, id)
			if !wait {
				return nil
			}
			return a.waitFor(cmd.Context(), c, key, timeout, "the new secret to be stored", func(o *v1alpha1.OAuthClient) (bool, error) {
				st := o.Status.SecretRotation
				return st != nil && st.LastRotationID == id, nil
			})
		},
	}
	cmd.Flags().DurationVar(&overlap, "overlap", 0, "how long the previous secret stays valid (spec.secretRotation.overlap); unchanged when not given (default 24h)")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the new secret is stored in the client Secret")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "how long --wait waits")
	return cmd
}

func (a *app) clientAndNamespace() (client.Client, string, error) {
	c, err := a.kubeClient()
	if err != nil {
		return nil, "", err
	}
	ns, err := a.namespace()
	return c, ns, err
}

// waitFor polls the object until done says so, printing progress on stderr.
func (a *app) waitFor(ctx context.Context, c client.Client, key client.ObjectKey, timeout time.Duration, what string,
	done func(*v1alpha1.OAuthClient) (bool, error)) error {
	if timeout <= 0 {
		return usagef("--timeout must be positive")
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_, _ = fmt.Fprintf(a.errOut, "waiting for %s...\n", what)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		o := &v1alpha1.OAuthClient{}
		if err := c.Get(ctx, key, o); err != nil {
			return fmt.Errorf("reading OAuthClient %s: %w", key, err)
		}
		ok, err := done(o)
		if err != nil {
			return err
		}
		if ok {
			_, _ = fmt.Fprintf(a.errOut, "done: %s\n", what)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("gave up waiting for %s of OAuthClient %s after %s", what, key, timeout)
		case <-tick.C:
		}
	}
}
