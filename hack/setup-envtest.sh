#!/usr/bin/env bash
# Builds the envtest control plane (kube-apiserver and etcd) from Go modules.
#
# The usual `setup-envtest use` downloads prebuilt binaries from a bucket that these
# machines cannot reach, so we build both from source through the Go module proxy:
#   - kube-apiserver from k8s.io/kubernetes, in a throwaway module under bin/ whose
#     `replace` directives send every staging module (k8s.io/api v0.0.0, ...) to the
#     matching published v0.x release;
#   - etcd from go.etcd.io/etcd/server/v3.
#
# Idempotent: does nothing when both binaries exist, and honours a preset
# KUBEBUILDER_ASSETS. The assets directory is always the last line of stdout; build
# output goes to stderr.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [[ -n "${KUBEBUILDER_ASSETS:-}" && -x "${KUBEBUILDER_ASSETS}/kube-apiserver" && -x "${KUBEBUILDER_ASSETS}/etcd" ]]; then
  echo "${KUBEBUILDER_ASSETS}"
  exit 0
fi

goos="$(go env GOOS)"
goarch="$(go env GOARCH)"
assets="${root}/bin/k8s/${K8S_VERSION}-${goos}-${goarch}"

if [[ -x "${assets}/kube-apiserver" && -x "${assets}/etcd" ]]; then
  echo "${assets}"
  exit 0
fi

mkdir -p "${assets}"
export GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0
ldflags="-s -w"

build_kube_apiserver() {
  local work="${root}/bin/.build/kube-apiserver-${K8S_VERSION}"
  rm -rf "${work}" && mkdir -p "${work}"
  echo ">> building kube-apiserver v${K8S_VERSION} from source (a few minutes on a cold cache)" >&2
  # Find the staging modules from the kubernetes go.mod itself, so the list never goes stale.
  local info gomod
  if ! info="$(cd "${work}" && go mod download -json "k8s.io/kubernetes@v${K8S_VERSION}")"; then
    echo "cannot download k8s.io/kubernetes@v${K8S_VERSION} (is that release served?): ${info}" >&2
    exit 1
  fi
  gomod="$(sed -n 's/.*"GoMod": "\(.*\)",*/\1/p' <<<"${info}")"
  local staging
  staging="$(awk '/^require|^\t/ && $2=="v0.0.0" {print $1}' "${gomod}" | sort -u)"
  local minor="${K8S_VERSION#1.}"
  {
    echo "module envtest/kube-apiserver"
    echo
    echo "go 1.26"
    echo
    echo "require k8s.io/kubernetes v${K8S_VERSION}"
    echo
    for m in ${staging}; do
      echo "replace ${m} v0.0.0 => ${m} v0.${minor}"
    done
  } > "${work}/go.mod"
  # Stamp the version as release builds do, so /version (and so a test) can tell which
  # minor it talks to; unstamped, releases before 1.31 report an empty major and minor.
  local v="k8s.io/component-base/version"
  local stamp="-X ${v}.gitVersion=v${K8S_VERSION} -X ${v}.gitMajor=1 -X ${v}.gitMinor=${minor%%.*}"
  # providerless leaves out the in-tree cloud providers (gone since 1.31, where the tag is
  # a no-op): envtest never runs one, and before 1.31 they import k8s.io/legacy-cloud-providers,
  # a module the proxy does not serve for every release (none of v0.29.x, for one).
  (cd "${work}" && go build -trimpath -tags providerless -ldflags "${ldflags} ${stamp}" -o "${assets}/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver) >&2
}

build_etcd() {
  local work="${root}/bin/.build/etcd-${ETCD_VERSION}"
  rm -rf "${work}" && mkdir -p "${work}"
  echo ">> building etcd ${ETCD_VERSION} from source" >&2
  printf 'module envtest/etcd\n\ngo 1.26\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "${ETCD_VERSION}" > "${work}/go.mod"
  (cd "${work}" && go build -trimpath -ldflags "${ldflags}" -o "${assets}/etcd" go.etcd.io/etcd/server/v3) >&2
}

[[ -x "${assets}/kube-apiserver" ]] || build_kube_apiserver
[[ -x "${assets}/etcd" ]] || build_etcd

echo "${assets}"
