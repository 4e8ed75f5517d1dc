package controller

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/secretrender"
)

// The output Secret holds two things. The record is client_id, client_secret and, during
// a rotation overlap, previous_client_secret: the only durable copy of secrets
// Cloudflare returns once, which rotation, recovery and renames read back
// (clientsecret.go, secretrename.go). The presentation is what consumers read: without
// spec.secretTemplate, account_id and issuer next to the record (the layout every
// existing user has); with it, the rendered keys, and each stableRandom value under
// stable-random.<name>.
//
// The record stays in the same Secret, under its usual keys, even with a template.
// A second, operator-private Secret could not be written in the same request as the
// rendered keys: a crash between the two writes would leave consumers with a secret
// the record does not hold, or the reverse, and recovering from that costs a rotation.
// Annotations and status are not secret. Keys a consumer does not reference are
// harmless to it, and the record keys are the ones kubectl-cfoauth and every existing
// user read. The stable random values stay for the same reason: they must survive
// re-renders, and the Secret is the one place written together with them.
//
// A template is rendered in every pass, from the record and the spec, with no
// Cloudflare call of its own: editing it re-renders the Secret on the next pass.

// DefaultAuthorizationServer is Cloudflare's OAuth authorization server (the issuer
// third-party clients use; the endpoints are documented under it).
const DefaultAuthorizationServer = "https://dash.cloudflare.com"

// recordKeys are the Secret keys of the record.
var recordKeys = []string{v1alpha1.SecretKeyClientID, v1alpha1.SecretKeyClientSecret, v1alpha1.SecretKeyPreviousClientSecret}

// placeholderSecret stands for a client secret the Secret does not hold yet (before the
// Create, or an adopted client's) when a template is checked; as long as Cloudflare's.
var placeholderSecret = strings.Repeat("x", 64)

// maxRandomKeysBytes is room kept for the stable-random.* keys next to the rendered
// data when the template is given its share of the 1 MiB.
const maxRandomKeysBytes = 8 * 128

// checkSecretTemplate renders spec.secretTemplate with what the Secret holds now,
// before the pass changes anything in Cloudflare. A template that cannot be rendered
// stalls the object (InvalidSecretTemplate) before any Cloudflare or Secret write,
// rather than after a Create or a rotation whose new secret must be stored.
func (r *OAuthClientReconciler) checkSecretTemplate(ctx context.Context, p *pass) error {
	t := p.obj.Spec.SecretTemplate
	if t == nil || p.obj.Observing() {
		return nil
	}
	existing, err := r.clientSecret(ctx, p)
	if err != nil {
		return err
	}
	record := map[string][]byte{}
	if existing != nil && string(existing.Data[v1alpha1.SecretKeyClientID]) == p.boundID {
		record = recordOf(existing)
	}
	if !isPublic(p) && len(record[v1alpha1.SecretKeyClientSecret]) == 0 {
		record[v1alpha1.SecretKeyClientSecret] = []byte(placeholderSecret)
	}
	_, err = r.renderTemplate(p, t, existing, record, randomsOf(existing), zeroEntropy{})
	return err
}

// present sets, next to the record in sec, what consumers read. A template that cannot
// be rendered leaves the presentation as existing has it (or none, for a new Secret)
// and is returned: the record is written anyway, because it may hold a secret
// Cloudflare returned once, and no half-rendered Secret is ever written.
func (r *OAuthClientReconciler) present(p *pass, sec, existing *corev1.Secret, record map[string][]byte, ch secretChange) error {
	t := p.obj.Spec.SecretTemplate
	if t == nil {
		sec.Data = merged(record, r.defaultPresentation(p))
		applyTemplateMetadata(sec, nil)
		return nil
	}
	random := randomsOf(existing)
	for name, v := range ch.random {
		if _, held := random[name]; !held {
			random[name] = v // carried over from a renamed Secret
		}
	}
	data, err := r.renderTemplate(p, t, existing, record, random, rand.Reader)
	if err != nil {
		sec.Data = merged(record, presentationOf(existing))
		return err
	}
	sec.Data = merged(record, data)
	sec.Type = secretType(t)
	applyTemplateMetadata(sec, t.Metadata)
	return nil
}

// renderTemplate renders the presentation of a templated Secret, stable random values
// included, and checks what Kubernetes would refuse: a Secret type that cannot change,
// the keys a Kubernetes type requires, labels and annotations.
func (r *OAuthClientReconciler) renderTemplate(p *pass, t *v1alpha1.SecretTemplate, existing *corev1.Secret, record, random map[string][]byte, entropy io.Reader) (map[string][]byte, error) {
	out, err := secretrender.Render(secretrender.Input{
		Template: secretrender.Template{Profile: string(t.Profile), Data: t.Data},
		Values:   r.templateValues(p, record),
		Secret:   secretState(p, record),
		Random:   random,
		Entropy:  entropy,
		Budget:   secretrender.MaxSecretBytes - dataSize(record) - maxRandomKeysBytes,
	})
	if err == nil {
		err = checkRendered(t, existing, out.Data)
	}
	if err != nil {
		return nil, newFailure(kindSpec, v1alpha1.ReasonInvalidSecretTemplate, "spec.secretTemplate: %s", err.Error())
	}
	data := out.Data
	for name, v := range out.Random {
		data[v1alpha1.SecretKeyStableRandomPrefix+name] = v
	}
	return data, nil
}

// templateValues are the template variables for the record. The client's scopes,
// redirect URIs and name are the spec's where it manages them, else Cloudflare's.
func (r *OAuthClientReconciler) templateValues(p *pass, record map[string][]byte) secretrender.Values {
	v := secretrender.Values{
		ClientID:             p.boundID,
		ClientSecret:         string(record[v1alpha1.SecretKeyClientSecret]),
		PreviousClientSecret: string(record[v1alpha1.SecretKeyPreviousClientSecret]),
		AccountID:            p.accountID(),
	}
	if v.ClientID == "" {
		v.ClientID = strings.Repeat("0", 32) // not created yet: only checking
	}
	v.SetAuthorizationServer(r.authorizationServer())
	spec := &p.obj.Spec
	if p.remote != nil {
		v.Scopes, v.RedirectURIs, v.ClientName = p.remote.Scopes, p.remote.RedirectURIs, p.remote.ClientName
	}
	if spec.Scopes != nil {
		v.Scopes = *spec.Scopes
	}
	if spec.RedirectURIs != nil {
		v.RedirectURIs = *spec.RedirectURIs
	}
	if spec.ClientName != nil {
		v.ClientName = *spec.ClientName
	}
	return v
}

func (r *OAuthClientReconciler) authorizationServer() string {
	if r.AuthorizationServer == "" {
		return DefaultAuthorizationServer
	}
	return r.AuthorizationServer
}

// defaultPresentation is what a Secret without spec.secretTemplate shows next to the
// record: account_id and, when the operator was told its issuer, issuer.
func (r *OAuthClientReconciler) defaultPresentation(p *pass) map[string][]byte {
	data := map[string][]byte{v1alpha1.SecretKeyAccountID: []byte(p.accountID())}
	if r.Issuer != "" {
		data[v1alpha1.SecretKeyIssuer] = []byte(r.Issuer)
	}
	return data
}

// isPublic reports whether the client is a public (PKCE) client, which has no secret:
// as Cloudflare has it, or as the spec asks before it exists.
func isPublic(p *pass) bool {
	if p.remote != nil {
		return p.remote.TokenEndpointAuthMethod == cfapi.AuthMethodNone
	}
	return p.obj.PublicClient()
}

func secretState(p *pass, record map[string][]byte) secretrender.SecretState {
	switch {
	case isPublic(p):
		return secretrender.SecretNone
	case len(record[v1alpha1.SecretKeyClientSecret]) == 0:
		return secretrender.SecretUnknown
	}
	return secretrender.SecretKnown
}

func secretType(t *v1alpha1.SecretTemplate) corev1.SecretType {
	if t.Type == "" {
		return corev1.SecretTypeOpaque
	}
	return corev1.SecretType(t.Type)
}

// requiredKeys are the keys Kubernetes requires of its own Secret types; any one of a
// group's keys satisfies it (basic-auth: username or password).
var requiredKeys = map[corev1.SecretType][][]string{
	corev1.SecretTypeBasicAuth:        {{corev1.BasicAuthUsernameKey, corev1.BasicAuthPasswordKey}},
	corev1.SecretTypeSSHAuth:          {{corev1.SSHAuthPrivateKey}},
	corev1.SecretTypeTLS:              {{corev1.TLSCertKey}, {corev1.TLSPrivateKeyKey}},
	corev1.SecretTypeDockerConfigJson: {{corev1.DockerConfigJsonKey}},
}

// checkRendered refuses, before anything is written, what Kubernetes would refuse.
func checkRendered(t *v1alpha1.SecretTemplate, existing *corev1.Secret, data map[string][]byte) error {
	typ := secretType(t)
	if existing != nil && existing.Type != typ {
		return fmt.Errorf("type %s: Secret %s has type %s, and Kubernetes never changes a Secret's type; change spec.secretRef.name in the same edit (the credentials move to the new Secret without a rotation)",
			typ, existing.Name, existing.Type)
	}
	for _, group := range requiredKeys[typ] {
		if !slices.ContainsFunc(group, func(k string) bool { _, ok := data[k]; return ok }) {
			return fmt.Errorf("type %s needs the key %s in data", typ, strings.Join(group, " or "))
		}
	}
	if typ == corev1.SecretTypeDockerConfigJson && !json.Valid(data[corev1.DockerConfigJsonKey]) {
		return fmt.Errorf("type %s needs valid JSON in key %s", typ, corev1.DockerConfigJsonKey)
	}
	if t.Metadata == nil {
		return nil
	}
	for _, k := range slices.Sorted(maps.Keys(t.Metadata.Labels)) {
		if errs := append(validation.IsQualifiedName(k), validation.IsValidLabelValue(t.Metadata.Labels[k])...); len(errs) > 0 {
			return fmt.Errorf("label %q: %s", k, strings.Join(errs, "; "))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(t.Metadata.Annotations)) {
		if errs := validation.IsQualifiedName(strings.ToLower(k)); len(errs) > 0 {
			return fmt.Errorf("annotation %q: %s", k, strings.Join(errs, "; "))
		}
	}
	return nil
}

// applyTemplateMetadata gives the Secret the template's labels and annotations, and
// removes the ones an earlier template gave it that this one does not; labels and
// annotations set by anyone else, and the operator's own, are left alone.
func applyTemplateMetadata(sec *corev1.Secret, md *v1alpha1.SecretTemplateMetadata) {
	var labels, annotations map[string]string
	if md != nil {
		labels, annotations = md.Labels, md.Annotations
	}
	if sec.Annotations == nil {
		sec.Annotations = map[string]string{}
	}
	ownedLabels := ownedList(sec.Annotations[v1alpha1.AnnotationTemplateLabels])
	ownedAnnotations := ownedList(sec.Annotations[v1alpha1.AnnotationTemplateAnnotations])
	sec.Labels = applyOwned(sec.Labels, ownedLabels, labels)
	sec.Annotations = applyOwned(sec.Annotations, ownedAnnotations, annotations)
	setList(sec.Annotations, v1alpha1.AnnotationTemplateLabels, labels)
	setList(sec.Annotations, v1alpha1.AnnotationTemplateAnnotations, annotations)
}

// applyOwned removes the keys of owned from m, then sets want, skipping the operator's
// own keys (which admission already refuses).
func applyOwned(m map[string]string, owned []string, want map[string]string) map[string]string {
	if m == nil {
		m = map[string]string{}
	}
	for _, k := range owned {
		if !operatorKey(k) {
			delete(m, k)
		}
	}
	for k, v := range want {
		if !operatorKey(k) {
			m[k] = v
		}
	}
	return m
}

func operatorKey(k string) bool {
	return strings.HasPrefix(k, "cloudflare.oauth-operator.dev/") || k == v1alpha1.LabelManagedBy
}

func ownedList(v string) []string {
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// setList records the keys of m under the annotation key, or removes it when m is empty.
func setList(annotations map[string]string, key string, m map[string]string) {
	keys := slices.Sorted(maps.Keys(m))
	keys = slices.DeleteFunc(keys, operatorKey)
	if len(keys) == 0 {
		delete(annotations, key)
		return
	}
	annotations[key] = strings.Join(keys, ",")
}

// recordOf is the record a Secret holds.
func recordOf(sec *corev1.Secret) map[string][]byte {
	out := map[string][]byte{}
	for _, k := range recordKeys {
		if v, ok := sec.Data[k]; ok {
			out[k] = v
		}
	}
	return out
}

// presentationOf is everything a Secret holds but the record; nil for no Secret.
func presentationOf(sec *corev1.Secret) map[string][]byte {
	if sec == nil {
		return nil
	}
	out := maps.Clone(sec.Data)
	for _, k := range recordKeys {
		delete(out, k)
	}
	return out
}

// randomsOf returns the stable random values a Secret keeps, by name.
func randomsOf(sec *corev1.Secret) map[string][]byte {
	out := map[string][]byte{}
	if sec == nil {
		return out
	}
	for k, v := range sec.Data {
		if name, ok := strings.CutPrefix(k, v1alpha1.SecretKeyStableRandomPrefix); ok {
			out[name] = v
		}
	}
	return out
}

func merged(a, b map[string][]byte) map[string][]byte {
	out := maps.Clone(a)
	if out == nil {
		out = map[string][]byte{}
	}
	maps.Copy(out, b)
	return out
}

func dataSize(data map[string][]byte) int {
	n := 0
	for k, v := range data {
		n += len(k) + len(v)
	}
	return n
}

// redactValues replaces, in a message from elsewhere (the apiserver), every value of
// the data that could be secret.
func redactValues(msg string, data map[string][]byte) string {
	for k, v := range data {
		if k == v1alpha1.SecretKeyClientID || len(v) < 8 {
			continue
		}
		msg = strings.ReplaceAll(msg, string(v), "[redacted]")
	}
	return msg
}

// secretRefused turns the apiserver's refusal of a templated Secret into
// InvalidSecretTemplate: the template shaped what was refused, and a person must
// change it. Other write errors are returned as they are.
func secretRefused(p *pass, sec *corev1.Secret, err error) error {
	if p.obj.Spec.SecretTemplate == nil || !apierrors.IsInvalid(err) {
		return fmt.Errorf("writing Secret %s: %w", sec.Name, err)
	}
	return newFailure(kindSpec, v1alpha1.ReasonInvalidSecretTemplate, "spec.secretTemplate: Kubernetes refused Secret %s: %s",
		sec.Name, redactValues(err.Error(), sec.Data))
}

// zeroEntropy stands in for randomness when a template is only checked: the values it
// produces are never stored.
type zeroEntropy struct{}

func (zeroEntropy) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
