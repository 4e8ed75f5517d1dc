# Image URL to use for all building/pushing image targets.
IMG ?= cloudflare-oauth-operator:dev
# Kubernetes version of the source-built envtest control plane.
K8S_VERSION ?= 1.37.2
ETCD_VERSION ?= v3.6.16

# Tools are pinned in go.mod (tool directives) and run through `go tool`.
CONTROLLER_GEN ?= go tool controller-gen
CRD_REF_DOCS ?= go tool crd-ref-docs
GOLANGCI_LINT ?= go tool golangci-lint
ACTIONLINT ?= go tool actionlint
KUBECTL ?= kubectl

# Setting SHELL to bash allows bash commands to be executed by recipes.
SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Display this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

# The chart's copy of config/crd/bases, rendered by its templates/crds.yaml.
CHART_CRDS = charts/cloudflare-oauth-operator/files/crds

.PHONY: manifests
manifests: ## Generate the CRDs and RBAC from the Go markers; copy every CRD into the Helm chart.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd paths="./..." output:crd:artifacts:config=config/crd/bases
	go run ./hack/crdreflow config/crd/bases/*.yaml
	rm -rf $(CHART_CRDS) && mkdir -p $(CHART_CRDS) && cp config/crd/bases/*.yaml $(CHART_CRDS)/

.PHONY: generate
generate: ## Generate the DeepCopy methods.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./..."

# The API reference, rendered from the Go types' doc comments and markers by
# crd-ref-docs with the templates in hack/crd-ref-docs; cat -s squeezes the blank lines
# the templates leave between sections.
API_REFERENCE = docs/reference/api.md

.PHONY: docs
docs: ## Generate the API reference, docs/reference/api.md, from the Go types in api/v1alpha1.
	@mkdir -p $(dir $(API_REFERENCE))
	$(CRD_REF_DOCS) --log-level ERROR --config hack/crd-ref-docs/config.yaml --renderer markdown \
		--templates-dir hack/crd-ref-docs/templates --source-path ./api/v1alpha1 --output-path $(API_REFERENCE)
	cat -s $(API_REFERENCE) > $(API_REFERENCE).tmp && mv $(API_REFERENCE).tmp $(API_REFERENCE)

# Generated files: git status also reports new (untracked) and deleted ones, which
# git diff does not, such as a new CRD missing from the chart.
GENERATED_PATHS = config/crd config/rbac api $(CHART_CRDS) $(API_REFERENCE)

.PHONY: verify-generated
verify-generated: manifests generate docs ## Fail when committed generated files (CRDs, RBAC, DeepCopy, the chart's CRDs, the API reference) are stale.
	@test -z "$$(git status --porcelain -- $(GENERATED_PATHS))" || { git status --short -- $(GENERATED_PATHS) >&2; git diff -- $(GENERATED_PATHS) >&2; echo "generated files are stale: run 'make manifests generate docs' and commit the result" >&2; exit 1; }

.PHONY: fmt
fmt: ## Run go fmt against code.
	go fmt ./...

.PHONY: vet
vet: ## Run go vet against code.
	go vet ./...

.PHONY: lint
lint: ## Run golangci-lint and actionlint on .github/workflows (both pinned in go.mod).
	$(GOLANGCI_LINT) run ./...
	$(ACTIONLINT)

.PHONY: observability
observability: ## Regenerate the Grafana dashboard, the chart's copies of it and of the alerts, and docs/dashboard.svg.
	go run ./hack/observability

.PHONY: setup-envtest
setup-envtest: ## Build kube-apiserver and etcd from source into bin/k8s (idempotent).
	@K8S_VERSION=$(K8S_VERSION) ETCD_VERSION=$(ETCD_VERSION) ./hack/setup-envtest.sh >/dev/null

.PHONY: test
# -count=1: several tests build the manager or the demo at run time (test/reliability,
# test/observability, hack/demo), which Go's test cache cannot see, so a cached pass
# could hide a change to the code they run.
test: manifests generate fmt vet setup-envtest ## Run all tests against a source-built envtest control plane.
	KUBEBUILDER_ASSETS="$$(K8S_VERSION=$(K8S_VERSION) ETCD_VERSION=$(ETCD_VERSION) ./hack/setup-envtest.sh)" \
		go test ./... -count=1 -coverprofile cover.out

.PHONY: test-reliability
test-reliability: manifests setup-envtest ## Reliability soak: Cloudflare faults at 200 objects, 100 kill -9 iterations, leader failover (report: bin/reliability-report.md).
	KUBEBUILDER_ASSETS="$$(K8S_VERSION=$(K8S_VERSION) ETCD_VERSION=$(ETCD_VERSION) ./hack/setup-envtest.sh)" \
		RELIABILITY_SCALE=full RELIABILITY_REPORT=$(CURDIR)/bin/reliability-report.md \
		go test ./test/reliability/ -count=1 -v -timeout 60m

# The oldest Kubernetes release the operator supports; docs/compatibility.md says why.
COMPAT_K8S_VERSION ?= 1.30.14

# The build runs on its own first, so a failed build stops here instead of leaving the
# tests to find the newest bin/k8s control plane; KUBEBUILDER_ASSETS= makes the script
# ignore one set in the environment.
.PHONY: test-compat
test-compat: manifests ## Admission suite (CRD rules, install manifests) on the oldest supported Kubernetes, COMPAT_K8S_VERSION, built from source (~5 min cold).
	@assets="$$(KUBEBUILDER_ASSETS= K8S_VERSION=$(COMPAT_K8S_VERSION) ETCD_VERSION=$(ETCD_VERSION) ./hack/setup-envtest.sh)"; \
		echo "test-compat: $$("$$assets/kube-apiserver" --version) from $$assets"; \
		KUBEBUILDER_ASSETS="$$assets" go test -count=1 ./api/... ./test/manifests/...

# Built, then run: `go run` would exit 1 on Ctrl-C whatever the demo's own status.
.PHONY: demo
demo: ## Run the operator locally: control plane, Cloudflare emulator, samples (DEMO_ARGS=--once exits 0 when all are Ready).
	go build -o bin/demo/demo ./hack/demo
	KUBEBUILDER_ASSETS="$$(K8S_VERSION=$(K8S_VERSION) ETCD_VERSION=$(ETCD_VERSION) ./hack/setup-envtest.sh)" \
		bin/demo/demo $(DEMO_ARGS)

##@ Build

.PHONY: build
build: manifests generate fmt vet ## Build the manager binary into bin/manager.
	go build -o bin/manager ./cmd/manager

.PHONY: plugin
plugin: ## Build the kubectl plugin into bin/kubectl-cfoauth.
	go build -o bin/kubectl-cfoauth ./cmd/kubectl-cfoauth

# The operator's namespace (--operator-namespace) when it runs out of cluster: its default credentials Secret.
OPERATOR_NAMESPACE ?= default

.PHONY: run
run: manifests generate fmt vet ## Run the manager against the cluster of the current kubeconfig (OPERATOR_NAMESPACE is its --operator-namespace).
	go run ./cmd/manager --operator-namespace=$(OPERATOR_NAMESPACE)

.PHONY: bench
bench: setup-envtest ## Run the scale benchmark (~65 min) and write bench/results.{md,svg,json}; BENCH_ARGS to change the matrix.
	KUBEBUILDER_ASSETS="$$(K8S_VERSION=$(K8S_VERSION) ETCD_VERSION=$(ETCD_VERSION) ./hack/setup-envtest.sh)" \
		go run ./hack/bench $(BENCH_ARGS)

.PHONY: docker-build
docker-build: ## Build the manager container image (needs a Docker engine).
	docker build -t $(IMG) .

.PHONY: install-yaml
install-yaml: ## Render config/default with image $(IMG) into bin/install.yaml, as a release attaches it.
	@mkdir -p bin
	go run ./hack/installyaml -image $(IMG) > bin/install.yaml

##@ Deployment

ifndef ignore-not-found
  ignore-not-found = false
endif

# Server-side apply with one named field manager: re-applying a newer CRD or manifest
# upgrades it in place. --force-conflicts takes over the fields another manager set
# (an earlier client-side `kubectl apply`, a Helm release), as docs/install.md explains.
KUBECTL_APPLY = $(KUBECTL) apply --server-side --field-manager=cloudflare-oauth-operator --force-conflicts

.PHONY: install
install: manifests ## Install or upgrade the CRDs (config/crd) in the cluster of the current kubeconfig.
	$(KUBECTL_APPLY) -k config/crd

.PHONY: uninstall
uninstall: manifests ## Delete the CRDs, and with them EVERY OAuthClient in the cluster (docs/install.md). ignore-not-found=true ignores missing ones.
	$(KUBECTL) delete --ignore-not-found=$(ignore-not-found) -k config/crd

.PHONY: deploy
deploy: manifests ## Install or upgrade the CRDs and the operator (config/default) with image $(IMG).
	$(KUBECTL) kustomize config/default | sed 's|image: controller:latest|image: $(IMG)|' | $(KUBECTL_APPLY) -f -

.PHONY: undeploy
undeploy: ## Remove the operator (config/operator), keeping the CRDs and every OAuthClient. ignore-not-found=true ignores missing ones.
	$(KUBECTL) delete --ignore-not-found=$(ignore-not-found) -k config/operator
