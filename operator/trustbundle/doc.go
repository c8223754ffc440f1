// Package trustbundle reads the SPIFFE trust bundle that agentid-operator
// verifies AgentCards against from a ConfigMap, as the Kagenti operator's
// --spire-trust-bundle-configmap flags name it.
//
// The ConfigMap holds one bundle per trust domain (an x509bundle.Set): the
// main key one bundle of the operator's trust domain or a bundle set
// document, and each "federated.<trust domain>" key one more.
//
// The ConfigMap is read through the manager's cache, so that its changes
// arrive by watch rather than by polling, and is parsed again only when its
// resourceVersion changes. The bundle is SPIFFE JSON (SPIRE's bundle
// publisher) or PEM certificates (bundle.crt), detected as Kagenti does.
// A missing ConfigMap, key or authority is an error that the caller must
// surface: a bundle that cannot be loaded never makes workloads silently
// unverified.
//
// Only the bundle's namespace is readable: the RBAC marker below makes a
// Role, not a ClusterRole rule, and package manager limits its cache of
// ConfigMaps to the one ConfigMap, so the operator never lists or watches
// ConfigMaps cluster-wide. spire-system is the namespace of the kustomize
// base; the Helm chart puts the Role in
// signatureVerification.spireTrustBundle.configMapNamespace.
//
// +kubebuilder:rbac:groups="",namespace=spire-system,resources=configmaps,verbs=get;list;watch
package trustbundle
