package controller

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/dns"
)

// The verification record step. spec.verification.publish says who publishes the TXT
// record of status.verificationRecord: Manual leaves it to a person; CloudflareDNS and
// ExternalDNS hand it to a publisher of internal/dns. The record is kept while the
// client lives (nothing says whether Cloudflare checks it again after verifying),
// replaced when Cloudflare's text or the host changes, and removed when the object goes
// with deletionPolicy Delete, or when publication switches to another mode.

// verificationWant is the record Cloudflare wants for the client, if it wants one: the
// one status.verificationRecord shows and the publishers publish.
func verificationWant(c *cfapi.OAuthClient) (dns.Want, bool) {
	if c == nil || c.ClientURIVerification == nil || c.ClientURIVerification.Text == "" {
		return dns.Want{}, false
	}
	u, err := url.Parse(c.ClientURI)
	if err != nil || u.Hostname() == "" {
		return dns.Want{}, false
	}
	return dns.Want{Host: u.Hostname(), Text: c.ClientURIVerification.Text}, true
}

// publishVerificationRecord keeps the verification record published the way the spec
// says, after removing what another mode, or the same mode at another host, published.
func (r *OAuthClientReconciler) publishVerificationRecord(ctx context.Context, p *pass) error {
	mode := p.obj.PublishMode()
	prev := p.prevPublication
	want, ok := verificationWant(p.remote)
	if prev != nil && (prev.Publish != mode || (ok && p.prevRecordHost != "" && !strings.EqualFold(p.prevRecordHost, want.Host))) {
		if err := r.unpublish(ctx, p, prev.Publish, p.prevRecordHost); err != nil {
			return r.publishFailed(p, err)
		}
		prev = nil
	}
	switch {
	case mode == v1alpha1.PublishManual:
		meta.RemoveStatusCondition(&p.obj.Status.Conditions, v1alpha1.ConditionVerificationRecordPublished)
		p.publication = nil
		return nil
	case !ok:
		setPublishedCondition(p.obj, metav1.ConditionUnknown, v1alpha1.ReasonNoVerificationRecord,
			"Cloudflare has given no verification text for the client URI host yet")
		p.publication = prev
		return nil
	}
	pub, err := r.publish(ctx, p, mode, want)
	if err != nil {
		return r.publishFailed(p, err)
	}
	r.recordPublication(p, mode, want, pub)
	return nil
}

// publish hands the record to the mode's publisher.
func (r *OAuthClientReconciler) publish(ctx context.Context, p *pass, mode v1alpha1.PublishMode, want dns.Want) (dns.Published, error) {
	if mode == v1alpha1.PublishExternalDNS {
		return r.externalDNS(p).Publish(ctx, p.obj, want)
	}
	cf, err := r.cloudflareDNS(ctx, p)
	if err != nil {
		return dns.Published{}, err
	}
	return cf.Publish(ctx, owner(p), want)
}

// unpublish removes what mode published at host for this object.
func (r *OAuthClientReconciler) unpublish(ctx context.Context, p *pass, mode v1alpha1.PublishMode, host string) error {
	var ch dns.Change
	var err error
	switch mode {
	case v1alpha1.PublishExternalDNS:
		ch, err = r.externalDNS(p).Unpublish(ctx, p.obj)
	case v1alpha1.PublishCloudflareDNS:
		if host == "" {
			return nil
		}
		var cf *dns.CloudflarePublisher
		if cf, err = r.cloudflareDNS(ctx, p); err == nil {
			ch, err = cf.Unpublish(ctx, owner(p), host)
		}
	}
	if err != nil {
		return err
	}
	for _, id := range ch.Deleted {
		r.Recorder.Eventf(p.obj, nil, corev1.EventTypeNormal, v1alpha1.EventVerificationRecordDeleted, "Publish",
			"deleted verification record %s at %s", id, host)
	}
	return nil
}

// unpublishOnDelete removes the object's record when the object goes with its client
// (deletionPolicy Delete): the Cloudflare DNS record, or the DNSEndpoint (which garbage
// collection would also remove, later). A record that cannot be removed does not hold
// the deletion: a leftover TXT record is harmless, and a Warning says so.
func (r *OAuthClientReconciler) unpublishOnDelete(ctx context.Context, p *pass) {
	mode, host := p.obj.PublishMode(), p.prevRecordHost
	if pub := p.prevPublication; pub != nil {
		mode = pub.Publish
	}
	if mode == v1alpha1.PublishManual {
		return
	}
	if host == "" && p.obj.Spec.ClientURI != nil {
		if u, err := url.Parse(*p.obj.Spec.ClientURI); err == nil {
			host = strings.ToLower(u.Hostname())
		}
	}
	if err := r.unpublish(ctx, p, mode, host); err != nil {
		logf.FromContext(ctx).Info("left the verification record in place", "host", host, "error", describe(err))
		r.Recorder.Eventf(p.obj, nil, corev1.EventTypeWarning, v1alpha1.EventVerificationRecordNotDeleted, "Delete",
			"left the verification record at %s in place: %s", host, describe(err))
	}
}

func owner(p *pass) dns.Owner {
	return dns.Owner{Namespace: p.obj.Namespace, Name: p.obj.Name, ClientID: p.boundID}
}

// cloudflareDNS is the Cloudflare DNS publisher for the object: its DNS credentials (or
// the client's own), paced by their user's budget.
//
// A CloudflareAccount shares its token for OAuth clients, not for DNS: a record at
// the object's client URI host is what lets Cloudflare verify that host for the
// object's client, so publishing with the platform team's token would let any allowed
// namespace have any host of that token's zones verified. An object with accountRef
// publishes only with a DNS token of its own namespace.
func (r *OAuthClientReconciler) cloudflareDNS(ctx context.Context, p *pass) (*dns.CloudflarePublisher, error) {
	api, key := p.api, p.credsKey
	var zoneID string
	if v := p.obj.Spec.Verification; p.obj.Spec.AccountRef != nil && (v == nil || v.CloudflareDNS == nil || v.CloudflareDNS.CredentialsRef == nil) {
		return nil, &dns.Error{Problem: dns.Forbidden, Message: "publishing with a CloudflareAccount's token is not allowed: " +
			"name a DNS token of this namespace in spec.verification.cloudflareDNS.credentialsRef (Zone → DNS → Edit on the zone of the client URI host)"}
	}
	if v := p.obj.Spec.Verification; v != nil && v.CloudflareDNS != nil {
		zoneID = v.CloudflareDNS.ZoneID
		if ref := v.CloudflareDNS.CredentialsRef; ref != nil {
			res, err := r.credentialsFromSecret(ctx, types.NamespacedName{Namespace: p.obj.Namespace, Name: ref.Name})
			if err != nil {
				return nil, err
			}
			if api, key, err = r.apis.get(res); err != nil {
				return nil, credentialsError(v1alpha1.ReasonInvalidCredentials, "the DNS credentials are unusable: "+err.Error())
			}
		}
	}
	if api == nil {
		return nil, errNoDNS // deleting an object whose credentials never resolved
	}
	if pause := r.apis.blockedFor(key); pause > 0 {
		return nil, &rateLimitedError{wait: pause}
	}
	d, ok := api.(dns.CloudflareAPI)
	if !ok {
		return nil, errNoDNS
	}
	return &dns.CloudflarePublisher{API: d, CredsKey: key, Zones: r.zones, Records: r.records, ZoneID: zoneID, MaxAge: r.SyncPeriod}, nil
}

// externalDNS is the DNSEndpoint publisher for the object.
func (r *OAuthClientReconciler) externalDNS(p *pass) *dns.ExternalDNSPublisher {
	pub := &dns.ExternalDNSPublisher{Client: r.Client, Reader: r.APIReader, Scheme: r.Scheme(),
		Labels: map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagerName, v1alpha1.LabelOAuthClient: p.obj.Name}}
	if v := p.obj.Spec.Verification; v != nil && v.ExternalDNS != nil && v.ExternalDNS.RecordTTL != nil {
		pub.TTL = *v.ExternalDNS.RecordTTL
	}
	return pub
}

// recordPublication notes where the record lives, in status and in Events.
func (r *OAuthClientReconciler) recordPublication(p *pass, mode v1alpha1.PublishMode, want dns.Want, pub dns.Published) {
	p.publication = &v1alpha1.RecordPublication{Publish: mode, ZoneID: pub.ZoneID, RecordID: pub.RecordID, DNSEndpoint: pub.Endpoint}
	where := fmt.Sprintf("DNSEndpoint %s", pub.Endpoint)
	if mode == v1alpha1.PublishCloudflareDNS {
		where = fmt.Sprintf("TXT record %s in zone %s", pub.RecordID, pub.ZoneID)
	}
	setPublishedCondition(p.obj, metav1.ConditionTrue, v1alpha1.ReasonRecordPublished,
		fmt.Sprintf("%s holds the verification text at %s", where, want.Host))
	switch {
	case pub.Change.Created != "" && len(pub.Change.Deleted) > 0:
		r.Recorder.Eventf(p.obj, nil, corev1.EventTypeNormal, v1alpha1.EventVerificationRecordReplaced, "Publish",
			"published the new verification text at %s (%s) and deleted the old record %s", want.Host, where, strings.Join(pub.Change.Deleted, ", "))
	case pub.Change.Created != "":
		r.Recorder.Eventf(p.obj, nil, corev1.EventTypeNormal, v1alpha1.EventVerificationRecordPublished, "Publish",
			"published the verification record at %s (%s)", want.Host, where)
	case len(pub.Change.Deleted) > 0:
		r.Recorder.Eventf(p.obj, nil, corev1.EventTypeNormal, v1alpha1.EventVerificationRecordDeleted, "Publish",
			"deleted the old verification record %s at %s", strings.Join(pub.Change.Deleted, ", "), want.Host)
	}
}

// publishFailed reports a failed publication in its condition and returns the failure
// with the retry policy of its kind: a person must fix a missing permission, zone or
// CRD; Cloudflare's refusals of the record need one too; the rest is retried.
func (r *OAuthClientReconciler) publishFailed(p *pass, err error) error {
	if e, ok := dns.AsError(err); ok {
		kind, reason := problemPolicy(e.Problem)
		setPublishedCondition(p.obj, metav1.ConditionFalse, reason, e.Message)
		return &failure{kind: kind, reason: reason, message: e.Message, cause: e}
	}
	var f *failure
	var limited *rateLimitedError
	switch {
	case errors.As(err, &limited):
		return err
	case errors.As(err, &f):
		setPublishedCondition(p.obj, metav1.ConditionFalse, f.reason, f.message)
		return err
	}
	if _, ok := cfapi.IsRateLimited(err); ok {
		return err
	}
	if cfapi.IsValidation(err) {
		msg := "Cloudflare refused the verification record: " + describe(err)
		setPublishedCondition(p.obj, metav1.ConditionFalse, v1alpha1.ReasonCloudflareError, msg)
		return &failure{kind: kindSpec, reason: v1alpha1.ReasonCloudflareError, message: msg, cause: err}
	}
	setPublishedCondition(p.obj, metav1.ConditionFalse, v1alpha1.ReasonCloudflareError, "publishing the verification record failed; retrying: "+describe(err))
	return err
}

// problemPolicy maps a publication problem to a failure kind and condition reason.
func problemPolicy(p dns.Problem) (failureKind, string) {
	switch p {
	case dns.Forbidden:
		return kindCredentials, v1alpha1.ReasonDNSForbidden
	case dns.CRDMissing:
		return kindSpec, v1alpha1.ReasonDNSEndpointCRDMissing
	case dns.Conflict:
		return kindConflict, v1alpha1.ReasonDNSEndpointConflict
	default:
		return kindSpec, v1alpha1.ReasonZoneNotFound
	}
}

func setPublishedCondition(obj *v1alpha1.OAuthClient, status metav1.ConditionStatus, reason, message string) {
	setCondition(obj, v1alpha1.ConditionVerificationRecordPublished, status, reason, message)
}
