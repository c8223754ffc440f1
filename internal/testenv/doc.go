// Package testenv locates the real components that agentid's tests run
// against: the module root, the shared specification directory beside it,
// the pinned MCP servers from npm, the envtest assets (etcd and
// kube-apiserver), SPIRE, the helm CLI and a freshly built agentid binary.
//
// The project's rule is that a test needing a real component fails, rather
// than skips, when CI=true and the component is missing: a green CI run must
// mean the real parts were exercised. Outside CI the same tests skip, so that
// `go test ./...` stays usable on a machine where scripts/test.sh has not
// installed anything yet. Every helper here applies that rule through
// RequireComponent.
package testenv
