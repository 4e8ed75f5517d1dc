package dns

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
)

// DNSEndpointGVK is external-dns's DNSEndpoint. It is handled as unstructured data: the
// operator needs four fields of it, not external-dns's providers as a Go dependency.
var DNSEndpointGVK = schema.GroupVersionKind{Group: "externaldns.k8s.io", Version: "v1alpha1", Kind: "DNSEndpoint"}

// EndpointSuffix is appended to the OAuthClient's name to name its DNSEndpoint.
const EndpointSuffix = "-client-uri-verification"

// ExternalDNSPublisher publishes the record as a DNSEndpoint owned by the OAuthClient,
// for external-dns (v0.22.0 or newer, --source=crd, TXT in --managed-record-types) to
// write to DNS. Garbage collection deletes it with the OAuthClient.
type ExternalDNSPublisher struct {
	// Client writes; Reader reads without a cache (a cached read would start an informer
	// that fails while the CRD is missing).
	Client client.Client
	Reader client.Reader
	Scheme *runtime.Scheme
	// TTL is the record's TTL in seconds; 0 leaves it to external-dns.
	TTL int64
	// Labels are set on the DNSEndpoint (e.g. managed-by).
	Labels map[string]string
}

// EndpointName is the DNSEndpoint's name for an OAuthClient.
func EndpointName(ownerName string) string { return ownerName + EndpointSuffix }

// Publish creates or updates the owner's DNSEndpoint: one endpoint, recordType TXT,
// the verification text as its only target.
func (p *ExternalDNSPublisher) Publish(ctx context.Context, owner client.Object, want Want) (Published, error) {
	name := EndpointName(owner.GetName())
	out := Published{Endpoint: name}
	current := &unstructured.Unstructured{}
	current.SetGroupVersionKind(DNSEndpointGVK)
	err := p.Reader.Get(ctx, client.ObjectKey{Namespace: owner.GetNamespace(), Name: name}, current)
	switch {
	case meta.IsNoMatchError(err) || isMissingKind(err):
		return out, crdMissing(err)
	case apierrors.IsNotFound(err):
		current = nil
	case err != nil:
		return out, err
	}
	if current != nil && !metav1.IsControlledBy(current, owner) {
		return out, &Error{Problem: Conflict, Message: fmt.Sprintf(
			"DNSEndpoint %s/%s exists and is not owned by this OAuthClient; delete or rename it", owner.GetNamespace(), name)}
	}

	desired := &unstructured.Unstructured{}
	if current != nil {
		desired = current.DeepCopy()
	}
	desired.SetGroupVersionKind(DNSEndpointGVK)
	desired.SetNamespace(owner.GetNamespace())
	desired.SetName(name)
	labels := desired.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	for k, v := range p.Labels {
		labels[k] = v
	}
	desired.SetLabels(labels)
	endpoint := map[string]any{"dnsName": want.Host, "recordType": typeTXT, "targets": []any{want.Text}}
	if p.TTL > 0 {
		endpoint["recordTTL"] = p.TTL
	}
	if err := unstructured.SetNestedSlice(desired.Object, []any{endpoint}, "spec", "endpoints"); err != nil {
		return out, err
	}
	if err := controllerutil.SetControllerReference(owner, desired, p.Scheme); err != nil {
		return out, err
	}
	if current != nil && equality.Semantic.DeepEqual(current.Object, desired.Object) {
		return out, nil
	}
	if current == nil {
		err = p.Client.Create(ctx, desired)
		out.Change.Created = name
	} else {
		err = p.Client.Update(ctx, desired)
	}
	if meta.IsNoMatchError(err) || isMissingKind(err) {
		return Published{Endpoint: name}, crdMissing(err)
	}
	if err != nil {
		return Published{Endpoint: name}, fmt.Errorf("writing DNSEndpoint %s: %w", name, err)
	}
	return out, nil
}

// Unpublish deletes the owner's DNSEndpoint, if it is there and ours (after a switch to
// another mode; deleting the OAuthClient leaves this to garbage collection).
func (p *ExternalDNSPublisher) Unpublish(ctx context.Context, owner client.Object) (Change, error) {
	var ch Change
	current := &unstructured.Unstructured{}
	current.SetGroupVersionKind(DNSEndpointGVK)
	err := p.Reader.Get(ctx, client.ObjectKey{Namespace: owner.GetNamespace(), Name: EndpointName(owner.GetName())}, current)
	switch {
	case apierrors.IsNotFound(err) || meta.IsNoMatchError(err) || isMissingKind(err):
		return ch, nil
	case err != nil:
		return ch, err
	case !metav1.IsControlledBy(current, owner):
		return ch, nil
	}
	uid := current.GetUID()
	if err := p.Client.Delete(ctx, current, client.Preconditions{UID: &uid}); err != nil && !apierrors.IsNotFound(err) {
		return ch, err
	}
	ch.Deleted = []string{current.GetName()}
	return ch, nil
}

// isMissingKind reports the apiserver's 404 for a resource type it does not serve (a
// REST mapper that was not told the CRD is gone yet).
func isMissingKind(err error) bool {
	var status apierrors.APIStatus
	if !apierrors.IsNotFound(err) || !asStatus(err, &status) {
		return false
	}
	d := status.Status().Details
	return d != nil && d.Name == "" && d.Kind != ""
}

func asStatus(err error, target *apierrors.APIStatus) bool {
	s, ok := err.(apierrors.APIStatus) //nolint:errorlint // the apiserver's status error is returned unwrapped
	if ok {
		*target = s
	}
	return ok
}

func crdMissing(err error) error {
	return &Error{Problem: CRDMissing, Cause: err, Message: "the DNSEndpoint CRD (externaldns.k8s.io/v1alpha1) is not installed: " +
		"install external-dns's CRD (config/crd/standard/dnsendpoints.externaldns.k8s.io.yaml), or choose another spec.verification.publish mode"}
}
