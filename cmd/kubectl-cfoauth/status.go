package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
)

func (a *app) statusCmd() *cobra.Command {
	var all, todo bool
	cmd := &cobra.Command{
		Use:   "status [-A | -n NAMESPACE] [--todo]",
		Short: "Show each OAuthClient's state, the DNS record to publish and its secret's age",
		Example: `  # every OAuthClient of the current namespace
  kubectl cfoauth status
  # only what needs a person, in every namespace, with the one thing each needs
  kubectl cfoauth status -A --todo`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.kubeClient()
			if err != nil {
				return err
			}
			var opts []client.ListOption
			if !all {
				ns, err := a.namespace()
				if err != nil {
					return err
				}
				opts = append(opts, client.InNamespace(ns))
			}
			list := &v1alpha1.OAuthClientList{}
			if err := c.List(cmd.Context(), list, opts...); err != nil {
				return fmt.Errorf("listing OAuthClients: %w", err)
			}
			rows := make([]statusRow, 0, len(list.Items))
			for i := range list.Items {
				r := a.row(cmd.Context(), c, &list.Items[i], time.Now())
				if !todo || r.todo != "" {
					rows = append(rows, r)
				}
			}
			slices.SortFunc(rows, func(x, y statusRow) int { return strings.Compare(x.namespace+"/"+x.name, y.namespace+"/"+y.name) })
			if todo {
				return writeTodo(a.out, rows, all)
			}
			return writeStatus(a.out, rows, all)
		},
	}
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "every namespace")
	cmd.Flags().BoolVar(&todo, "todo", false, "only the objects that need a person, with the one thing each needs")
	return cmd
}

// statusRow is one object as the status table shows it.
type statusRow struct {
	namespace, name          string
	ready, reason            string
	visibility, verification string
	record                   string
	secretAge, nextRotation  string
	previousValid            string
	todo                     string
}

func (a *app) row(ctx context.Context, c client.Client, o *v1alpha1.OAuthClient, now time.Time) statusRow {
	r := statusRow{namespace: o.Namespace, name: o.Name, ready: "Unknown", reason: "-", visibility: dash(o.Status.Visibility),
		verification: "-", record: "-", secretAge: "-", nextRotation: "-", previousValid: "-"}
	ready := meta.FindStatusCondition(o.Status.Conditions, v1alpha1.ConditionReady)
	if ready != nil {
		r.ready, r.reason = string(ready.Status), ready.Reason
	}
	if v := o.Status.ClientURIVerification; v != nil {
		r.verification = v.Status
		if rec := o.Status.VerificationRecord; rec != nil && v.Status != "verified" {
			r.record = fmt.Sprintf("%s %s %q", rec.Name, rec.Type, rec.Content)
		}
	}
	issued := secretIssuedAt(ctx, c, o)
	if !issued.IsZero() {
		r.secretAge = age(now.Sub(issued))
		if sr := o.Spec.SecretRotation; sr != nil && sr.Every != nil {
			r.nextRotation = issued.Add(sr.Every.Duration).UTC().Format(time.RFC3339)
		}
	}
	if st := o.Status.SecretRotation; st != nil && st.PreviousSecretExpiresAt != nil {
		r.previousValid = "until " + st.PreviousSecretExpiresAt.UTC().Format(time.RFC3339)
	}
	r.todo = todoFor(o, ready)
	return r
}

// secretIssuedAt is when the current client secret was issued: from status, else from
// the client Secret's rotated-at annotation (its metadata only: no secret is read).
func secretIssuedAt(ctx context.Context, c client.Client, o *v1alpha1.OAuthClient) time.Time {
	if st := o.Status.SecretRotation; st != nil && st.LastRotatedAt != nil {
		return st.LastRotatedAt.Time
	}
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(secretGVK)
	if err := c.Get(ctx, client.ObjectKey{Namespace: o.Namespace, Name: o.SecretName()}, m); err != nil {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, m.Annotations[v1alpha1.AnnotationRotatedAt])
	if err != nil {
		return time.Time{}
	}
	return t
}

// todoFor is the one thing a person must do for the object, or "".
func todoFor(o *v1alpha1.OAuthClient, ready *metav1.Condition) string {
	if ready != nil && ready.Reason == v1alpha1.ReasonDriftDetected {
		// Observe mode: Cloudflare and the spec disagree, and only a person may decide.
		return "make the spec match Cloudflare, or switch to managementPolicy: Manage to make Cloudflare match the spec (" + ready.Message + ")"
	}
	if ready == nil || ready.Status == metav1.ConditionTrue {
		return ""
	}
	rec := "status.verificationRecord"
	if v := o.Status.VerificationRecord; v != nil {
		rec = fmt.Sprintf("%s %s %q", v.Name, v.Type, v.Content)
	}
	switch ready.Reason {
	case v1alpha1.ReasonAwaitingVerification:
		return "publish the DNS record " + rec
	case v1alpha1.ReasonVerificationFailed:
		return "publish the DNS record " + rec + ", then run: kubectl cfoauth restart-verification " + o.Name + " -n " + o.Namespace
	case v1alpha1.ReasonCredentialsNotFound, v1alpha1.ReasonInvalidCredentials, v1alpha1.ReasonUnauthorized, v1alpha1.ReasonForbidden:
		return "fix the credentials: " + ready.Message
	case v1alpha1.ReasonDeletionBlocked:
		return "fix the credentials, or set spec.deletionPolicy: Orphan to release the object"
	case v1alpha1.ReasonRateLimited, v1alpha1.ReasonCloudflareError, v1alpha1.ReasonResumingCreate, v1alpha1.ReasonRotationPending:
		return "" // the operator is on it
	}
	if meta.IsStatusConditionTrue(o.Status.Conditions, v1alpha1.ConditionStalled) {
		return ready.Message
	}
	return ""
}

func writeStatus(w io.Writer, rows []statusRow, all bool) error {
	return writeTable(w, all, rows,
		[]string{"NAME", "READY", "REASON", "VISIBILITY", "VERIFICATION", "RECORD TO PUBLISH", "SECRET AGE", "NEXT ROTATION", "PREVIOUS SECRET VALID"},
		func(r statusRow) []string {
			return []string{r.name, r.ready, r.reason, r.visibility, r.verification, r.record, r.secretAge, r.nextRotation, r.previousValid}
		})
}

func writeTodo(w io.Writer, rows []statusRow, all bool) error {
	if len(rows) == 0 {
		_, err := fmt.Fprintln(w, "nothing needs a person")
		return err
	}
	return writeTable(w, all, rows, []string{"NAME", "REASON", "TODO"},
		func(r statusRow) []string { return []string{r.name, r.reason, r.todo} })
}

// writeTable writes aligned columns, with a NAMESPACE column first across namespaces.
func writeTable(w io.Writer, all bool, rows []statusRow, head []string, cells func(statusRow) []string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if all {
		head = append([]string{"NAMESPACE"}, head...)
	}
	_, _ = fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, r := range rows {
		line := cells(r)
		if all {
			line = append([]string{r.namespace}, line...)
		}
		_, _ = fmt.Fprintln(tw, strings.Join(line, "\t"))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// age renders a duration as kubectl does: 45s, 12m, 5h, 200d.
func age(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}
