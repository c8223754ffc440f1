package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/agentid/agentid/internal/testenv"
)

// kustomizeResources lists the files that the kustomization in dir names,
// following directory resources into their own kustomization.yaml. The
// base uses resources only (no patches or generators), so the files are
// what kustomize renders.
func kustomizeResources(t *testing.T, dir string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Resources []string `json:"resources"`
	}
	if err := sigsyaml.UnmarshalStrict(withoutKustomizeHeader(data), &k); err != nil {
		t.Fatalf("%s/kustomization.yaml: %v", dir, err)
	}
	var out []string
	for _, r := range k.Resources {
		p := filepath.Join(dir, r)
		if st, err := os.Stat(p); err != nil {
			t.Fatalf("%s/kustomization.yaml: %v", dir, err)
		} else if st.IsDir() {
			out = append(out, kustomizeResources(t, p)...)
		} else {
			out = append(out, p)
		}
	}
	return out
}

// withoutKustomizeHeader drops apiVersion and kind, which the struct above
// does not model.
func withoutKustomizeHeader(data []byte) []byte {
	var lines []string
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "apiVersion:") || strings.HasPrefix(l, "kind:") {
			continue
		}
		lines = append(lines, l)
	}
	return []byte(strings.Join(lines, "\n"))
}

// TestKustomizeBaseInstalls applies every object of deploy/base to a real
// API server without anything preinstalled, and checks that the
// Deployment's arguments are flags this binary accepts.
func TestKustomizeBaseInstalls(t *testing.T) {
	assets := testenv.EnvtestAssets(t)
	root := testenv.Root(t)
	c := emptyAPIServer(t, assets)
	ctx := t.Context()
	// The trust bundle's namespace is SPIRE's: the base binds a Role there
	// but does not create it.
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "spire-system"}}); err != nil {
		t.Fatal(err)
	}

	kinds := map[string]int{}
	var deployment *unstructured.Unstructured
	roleNamespaces := map[string]bool{}
	for _, file := range kustomizeResources(t, filepath.Join(root, "deploy", "base")) {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			var u unstructured.Unstructured
			if err := dec.Decode(&u.Object); err == io.EOF {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			if len(u.Object) == 0 {
				continue
			}
			if err := c.Create(ctx, &u); err != nil {
				t.Fatalf("%s: creating %s %s: %v", filepath.Base(file), u.GetKind(), u.GetName(), err)
			}
			kinds[u.GetKind()]++
			switch u.GetKind() {
			case "Deployment":
				checkDeploymentArgs(t, &u)
				deployment = &u
			case "Role", "RoleBinding":
				roleNamespaces[u.GetNamespace()] = true
			}
			if u.GetKind() == "CustomResourceDefinition" {
				waitEstablished(t, c, u.GetName())
			}
		}
	}
	// One Role (and binding) for the Lease in the operator's namespace, one
	// for the trust bundle in SPIRE's.
	for k, n := range map[string]int{"Namespace": 1, "CustomResourceDefinition": 1, "ClusterRole": 1, "ClusterRoleBinding": 1, "Role": 2, "RoleBinding": 2, "ServiceAccount": 1, "Deployment": 1} {
		if kinds[k] != n {
			t.Errorf("deploy/base has %d %s, want %d", kinds[k], k, n)
		}
	}
	// The Roles are where the Deployment's flags put the Lease and the
	// bundle: nowhere else may the operator read ConfigMaps or Leases.
	if deployment == nil {
		t.Fatal("deploy/base has no Deployment")
	}
	containers, _, _ := unstructured.NestedSlice(deployment.Object, "spec", "template", "spec", "containers")
	args, _, _ := unstructured.NestedStringSlice(containers[0].(map[string]any), "args")
	o, err := parseFlags(args, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{o.config.LeaderElectionNamespace: true, o.config.Bundle.Namespace: true}
	if !reflect.DeepEqual(roleNamespaces, want) {
		t.Errorf("Roles and RoleBindings in namespaces %v; the Deployment's Lease and bundle are in %v", roleNamespaces, want)
	}
}

func checkDeploymentArgs(t *testing.T, u *unstructured.Unstructured) {
	t.Helper()
	containers, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
	if len(containers) != 1 {
		t.Fatalf("the Deployment has %d containers, want 1", len(containers))
	}
	args, _, _ := unstructured.NestedStringSlice(containers[0].(map[string]any), "args")
	o, err := parseFlags(args, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatalf("the Deployment's args %v: %v", args, err)
	}
	if !o.config.RequireSignature || !o.config.LeaderElection {
		t.Errorf("the Deployment's args do not verify signatures with leader election: %+v", o.config)
	}
	checkNetworkPolicyPeer(t, u, containers[0].(map[string]any), args)
}

// checkNetworkPolicyPeer checks that an overlay adding
// --enforce-network-policies gets restrictive policies that admit the
// operator's own pods: $POD_NAMESPACE comes from the downward API, and the
// operator pod selector matches the pod template's labels (Kagenti's
// selects namespace labels its manifests never set).
func checkNetworkPolicyPeer(t *testing.T, u *unstructured.Unstructured, container map[string]any, args []string) {
	t.Helper()
	env, _, _ := unstructured.NestedSlice(container, "env")
	fromDownwardAPI := false
	for _, e := range env {
		e := e.(map[string]any)
		path, _, _ := unstructured.NestedString(e, "valueFrom", "fieldRef", "fieldPath")
		if e["name"] == EnvPodNamespace && path == "metadata.namespace" {
			fromDownwardAPI = true
		}
	}
	if !fromDownwardAPI {
		t.Errorf("the Deployment does not set $%s from metadata.namespace", EnvPodNamespace)
	}
	// The namespace as the downward API gives it.
	getenv := func(k string) string {
		if k == EnvPodNamespace && fromDownwardAPI {
			return u.GetNamespace()
		}
		return ""
	}
	o, err := parseFlags(append(args, "--enforce-network-policies"), getenv, io.Discard)
	if err != nil {
		t.Fatalf("the Deployment's args with --enforce-network-policies: %v", err)
	}
	np := o.config.NetworkPolicies
	if np.OperatorNamespace != u.GetNamespace() {
		t.Errorf("restrictive policies admit namespace %q, the operator runs in %q", np.OperatorNamespace, u.GetNamespace())
	}
	sel, err := metav1.LabelSelectorAsSelector(np.OperatorPods)
	if err != nil {
		t.Fatal(err)
	}
	podLabels, _, _ := unstructured.NestedStringMap(u.Object, "spec", "template", "metadata", "labels")
	if !sel.Matches(labels.Set(podLabels)) {
		t.Errorf("restrictive policies admit pods %s; the operator's pods are labelled %v", sel, podLabels)
	}
}

func waitEstablished(t *testing.T, c client.Client, name string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var crd apiextensionsv1.CustomResourceDefinition
		if err := c.Get(t.Context(), client.ObjectKey{Name: name}, &crd); err == nil {
			for _, cond := range crd.Status.Conditions {
				if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("CRD %s not established", name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// emptyAPIServer starts a real API server (envtest, from assets) with
// nothing installed and returns a client of it that knows the built-in
// types and CRDs.
func emptyAPIServer(t *testing.T, assets string) client.Client {
	t.Helper()
	env := &envtest.Environment{BinaryAssetsDirectory: assets}
	cfg, err := env.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Stop() })
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
