{{/* The chart's name, or nameOverride. */}}
{{- define "cfoo.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The release's full name, at most 63 characters: fullnameOverride, or the release name
followed by the chart's name unless it already contains it.
*/}}
{{- define "cfoo.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "cfoo.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels that select the manager pods; they never change after install. */}}
{{- define "cfoo.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cfoo.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
control-plane: controller-manager
{{- end -}}

{{/* Labels of every object. */}}
{{- define "cfoo.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "cfoo.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "cfoo.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "cfoo.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* repository@digest when image.digest is set (the tag is then ignored), else repository:tag. */}}
{{- define "cfoo.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/*
The manager's rules for namespaced kinds, the namespaced part of config/rbac/role.yaml
(generated from the +kubebuilder:rbac markers; a test checks that the chart grants
everything role.yaml does). Secrets: get the credentials Secret an object names, create
and update the client Secret the operator owns, and list/watch metadata only to notice
changes. Bound cluster-wide, or per watched namespace with watchNamespaces; the
cluster-scoped kinds are in cfoo.clusterScopedRules.
*/}}
{{- define "cfoo.managerRules" -}}
- apiGroups:
  - ""
  resources:
  - secrets
  verbs:
  - create
  - delete
  - get
  - list
  - patch
  - update
  - watch
- apiGroups:
  - externaldns.k8s.io
  resources:
  - dnsendpoints
  verbs:
  - create
  - delete
  - get
  - update
- apiGroups:
  - ""
  - events.k8s.io
  resources:
  - events
  verbs:
  - create
  - patch
- apiGroups:
  - cloudflare.oauth-operator.dev
  resources:
  - oauthclients
  verbs:
  - get
  - list
  - patch
  - update
  - watch
- apiGroups:
  - cloudflare.oauth-operator.dev
  resources:
  - oauthclients/finalizers
  verbs:
  - update
- apiGroups:
  - cloudflare.oauth-operator.dev
  resources:
  - oauthclients/status
  verbs:
  - get
  - patch
  - update
{{- end -}}

{{/*
Cluster-wide, in every mode: CloudflareAccounts and Namespaces are cluster-scoped, so no
Role can grant them. The manager reconciles CloudflareAccounts (verifies their tokens,
writes their status, holds its finalizer on them) and reads Namespaces' labels (metadata
only) for the namespace selectors of accounts and of the default credentials. The rest
of config/rbac/role.yaml, cluster-scoped.
*/}}
{{- define "cfoo.clusterScopedRules" -}}
- apiGroups:
  - cloudflare.oauth-operator.dev
  resources:
  - cloudflareaccounts
  verbs:
  - get
  - list
  - patch
  - update
  - watch
- apiGroups:
  - cloudflare.oauth-operator.dev
  resources:
  - cloudflareaccounts/finalizers
  verbs:
  - update
- apiGroups:
  - cloudflare.oauth-operator.dev
  resources:
  - cloudflareaccounts/status
  verbs:
  - get
  - patch
  - update
- apiGroups:
  - ""
  resources:
  - namespaces
  verbs:
  - get
  - list
  - watch
{{- end -}}

{{/*
Cluster-wide, in every mode: CRDs are cluster-scoped, so no Role can grant them. The
manager reads its own CRD, by name, to notice that it is being deleted (an uninstall
that deletes every OAuthClient) and then deletes no Cloudflare client. Identical to the
CustomResourceDefinition rule of config/rbac/role.yaml (a test keeps the two in sync).
*/}}
{{- define "cfoo.crdReaderRules" -}}
- apiGroups:
  - apiextensions.k8s.io
  resourceNames:
  - oauthclients.cloudflare.oauth-operator.dev
  resources:
  - customresourcedefinitions
  verbs:
  - get
{{- end -}}
