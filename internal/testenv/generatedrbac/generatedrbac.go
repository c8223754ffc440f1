// Package generatedrbac reads the operator's RBAC as scripts/generate.sh
// writes it (deploy/rbac/role.yaml: one ClusterRole and a Role per
// namespace that the operator needs only one of) and grants it to a test
// user on an API server, so that tests run the operator with exactly the
// permissions a cluster gives it.
package generatedrbac

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/agentid/agentid/internal/testenv"
)

// RBAC is the content of deploy/rbac/role.yaml.
type RBAC struct {
	ClusterRole rbacv1.ClusterRole
	// Roles are in the namespaces the markers name (agentid-system for the
	// leader election Lease, spire-system for the trust bundle).
	Roles []rbacv1.Role
}

// Read parses deploy/rbac/role.yaml of the module at root.
func Read(root string) (*RBAC, error) {
	data, err := os.ReadFile(filepath.Join(root, "deploy", "rbac", "role.yaml"))
	if err != nil {
		return nil, fmt.Errorf("generatedrbac: %w", err)
	}
	var out RBAC
	clusterRoles := 0
	for _, doc := range bytes.Split(data, []byte("\n---\n")) {
		doc = bytes.TrimPrefix(bytes.TrimSpace(doc), []byte("---"))
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		var meta metav1.TypeMeta
		if err := sigsyaml.Unmarshal(doc, &meta); err != nil {
			return nil, fmt.Errorf("generatedrbac: %w", err)
		}
		switch meta.Kind {
		case "ClusterRole":
			clusterRoles++
			if err := sigsyaml.UnmarshalStrict(doc, &out.ClusterRole); err != nil {
				return nil, fmt.Errorf("generatedrbac: %w", err)
			}
		case "Role":
			var role rbacv1.Role
			if err := sigsyaml.UnmarshalStrict(doc, &role); err != nil {
				return nil, fmt.Errorf("generatedrbac: %w", err)
			}
			out.Roles = append(out.Roles, role)
		default:
			return nil, fmt.Errorf("generatedrbac: unexpected %q in deploy/rbac/role.yaml", meta.Kind)
		}
	}
	if clusterRoles != 1 || len(out.ClusterRole.Rules) == 0 {
		return nil, errors.New("generatedrbac: deploy/rbac/role.yaml needs exactly one ClusterRole with rules")
	}
	return &out, nil
}

// MustRead is Read of the module's own deploy/rbac/role.yaml.
func MustRead(t testing.TB) *RBAC {
	t.Helper()
	r, err := Read(testenv.Root(t))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Grant gives user the ClusterRole and every Role, under names derived from
// name (so that several tests can share an API server), creating the
// Roles' namespaces when they do not exist.
func (r *RBAC) Grant(ctx context.Context, c client.Client, name, user string) error {
	subjects := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}
	cr := r.ClusterRole.DeepCopy()
	cr.ObjectMeta = metav1.ObjectMeta{Name: name}
	objs := []client.Object{cr, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
		Subjects:   subjects,
	}}
	for _, role := range r.Roles {
		ns := role.Namespace
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("generatedrbac: %w", err)
		}
		role := role.DeepCopy()
		role.ObjectMeta = metav1.ObjectMeta{Namespace: ns, Name: name}
		objs = append(objs, role, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
			Subjects:   subjects,
		})
	}
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil {
			return fmt.Errorf("generatedrbac: creating %T %s: %w", o, o.GetName(), err)
		}
	}
	return nil
}

// Role returns the Role of namespace ns, or nil.
func (r *RBAC) Role(ns string) *rbacv1.Role {
	for i := range r.Roles {
		if r.Roles[i].Namespace == ns {
			return &r.Roles[i]
		}
	}
	return nil
}
