package discovery

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/agentid/agentid/api/v1alpha1"
)

// ManagedBy is the app.kubernetes.io/managed-by value of the cards that
// discovery creates.
const ManagedBy = "agentid-operator"

const labelManagedBy = "app.kubernetes.io/managed-by"

// Options configure a Reconciler.
type Options struct {
	// BindIdentity gives the created cards identityBinding: {} (binding to
	// the operator's trust domain and the workload's service account), as
	// Kagenti does when --spire-trust-domain is set.
	BindIdentity bool
}

// Reconciler creates the AgentCards of the agent workloads of one kind. It
// is safe for concurrent use.
type Reconciler struct {
	client   client.Client
	recorder events.EventRecorder
	kind     kind
	opts     Options
}

// kind is what the reconciler needs to know of a workload kind.
type kind struct {
	name   string // Deployment, StatefulSet
	newObj func() client.Object
}

var (
	deployments  = kind{name: "Deployment", newObj: func() client.Object { return &appsv1.Deployment{} }}
	statefulSets = kind{name: "StatefulSet", newObj: func() client.Object { return &appsv1.StatefulSet{} }}
)

// New returns the reconcilers of Deployments and of StatefulSets, which
// read and write through c and report events to recorder.
func New(c client.Client, recorder events.EventRecorder, opts Options) ([]*Reconciler, error) {
	if c == nil {
		return nil, errors.New("discovery: no client")
	}
	if recorder == nil {
		return nil, errors.New("discovery: no event recorder")
	}
	var out []*Reconciler
	for _, k := range []kind{deployments, statefulSets} {
		out = append(out, &Reconciler{client: c, recorder: recorder, kind: k, opts: opts})
	}
	return out, nil
}

// +kubebuilder:rbac:groups=agent.kagenti.dev,resources=agentcards,verbs=list;watch;create;delete
// +kubebuilder:rbac:groups=apps,resources=deployments;statefulsets,verbs=get;list;watch

// Reconcile gives one workload the card it should have: one when it is an
// agent without a card, none of discovery's when it opted out or another
// card targets it.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	w := r.kind.newObj()
	if err := r.client.Get(ctx, req.NamespacedName, w); err != nil {
		// A deleted workload's card goes with it (owner reference).
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if !w.GetDeletionTimestamp().IsZero() {
		return reconcile.Result{}, nil
	}
	ours, others, err := r.cardsOf(ctx, w)
	if err != nil {
		return reconcile.Result{}, err
	}
	switch {
	case optedOut(w.GetLabels()):
		return reconcile.Result{}, r.remove(ctx, w, ours, "the workload opted out with "+v1alpha1.LabelDiscovery+"="+v1alpha1.DiscoveryDisabled)
	case len(others) > 0:
		return reconcile.Result{}, r.remove(ctx, w, ours, "AgentCard "+others[0].Name+" targets the workload")
	case len(ours) > 0 || !isAgent(w.GetLabels()):
		return reconcile.Result{}, nil
	}
	return reconcile.Result{}, r.create(ctx, w)
}

// cardsOf lists the AgentCards that target w: those discovery created for
// it, and the others.
func (r *Reconciler) cardsOf(ctx context.Context, w client.Object) (ours, others []*v1alpha1.AgentCard, err error) {
	var list v1alpha1.AgentCardList
	// The cards are only read (and deleted by name): no copy out of the
	// cache, which a namespace of many agents would pay per workload.
	if err := r.client.List(ctx, &list, client.InNamespace(w.GetNamespace()), client.UnsafeDisableDeepCopy); err != nil {
		return nil, nil, fmt.Errorf("discovery: listing AgentCards: %w", err)
	}
	target := r.target(w)
	for i := range list.Items {
		c := &list.Items[i]
		if !c.Spec.TargetRef.SameWorkload(target) || !c.DeletionTimestamp.IsZero() {
			continue
		}
		if discovered(c, w) {
			ours = append(ours, c)
		} else {
			others = append(others, c)
		}
	}
	return ours, others, nil
}

// discovered reports whether discovery created card for w: it says so in
// its labels and w is its controlling owner. A card that only carries the
// label is someone's, and is never deleted.
func discovered(card *v1alpha1.AgentCard, w client.Object) bool {
	if card.Labels[labelManagedBy] != ManagedBy {
		return false
	}
	owner := metav1.GetControllerOfNoCopy(card)
	return owner != nil && owner.UID == w.GetUID()
}

func (r *Reconciler) target(w client.Object) v1alpha1.TargetRef {
	return v1alpha1.TargetRef{APIVersion: appsv1.SchemeGroupVersion.String(), Kind: r.kind.name, Name: w.GetName()}
}

// create makes w's card. A card of that name that appeared meanwhile (the
// cache lags behind the API server) is left alone.
func (r *Reconciler) create(ctx context.Context, w client.Object) error {
	card := r.cardFor(w)
	if err := r.client.Create(ctx, card); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return fmt.Errorf("discovery: creating AgentCard %s for %s %s: %w", card.Name, r.kind.name, w.GetName(), err)
	}
	r.recorder.Eventf(w, card, corev1.EventTypeNormal, "AgentCardCreated", "Discover", "created AgentCard %s for agent %s %s", card.Name, r.kind.name, w.GetName())
	return nil
}

// cardFor is the AgentCard that discovery creates for w.
func (r *Reconciler) cardFor(w client.Object) *v1alpha1.AgentCard {
	labels := map[string]string{labelManagedBy: ManagedBy}
	app := w.GetLabels()["app.kubernetes.io/name"]
	if app == "" {
		app = w.GetName()
	}
	if len(validation.IsValidLabelValue(app)) == 0 {
		labels["app.kubernetes.io/name"] = app
	}
	yes := true
	card := &v1alpha1.AgentCard{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: w.GetNamespace(),
			Name:      CardName(w.GetName(), r.kind.name),
			Labels:    labels,
			// The workload controls the card, so that garbage collection
			// deletes it with the workload. blockOwnerDeletion stays unset:
			// setting it needs update on the workload's finalizers, a
			// permission the operator otherwise has no use for.
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: appsv1.SchemeGroupVersion.String(),
				Kind:       r.kind.name,
				Name:       w.GetName(),
				UID:        w.GetUID(),
				Controller: &yes,
			}},
		},
		Spec: v1alpha1.AgentCardSpec{TargetRef: r.target(w)},
	}
	if r.opts.BindIdentity {
		card.Spec.IdentityBinding = &v1alpha1.IdentityBinding{}
	}
	return card
}

// remove deletes the cards that discovery created for w, saying why.
func (r *Reconciler) remove(ctx context.Context, w client.Object, cards []*v1alpha1.AgentCard, why string) error {
	for _, c := range cards {
		// The precondition keeps a card re-created meanwhile under the
		// same name (the cache lags) from being deleted for its
		// predecessor.
		err := r.client.Delete(ctx, c, client.Preconditions{UID: &c.UID})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return fmt.Errorf("discovery: deleting AgentCard %s: %w", c.Name, err)
		}
		if err == nil {
			r.recorder.Eventf(w, c, corev1.EventTypeNormal, "AgentCardDeleted", "Discover", "deleted the discovered AgentCard %s: %s", c.Name, why)
		}
	}
	return nil
}

// CardName is the name of the card discovery creates for a workload of a
// kind: <workload>-<kind in lower case>-card, as Kagenti names it (the kind
// keeps a Deployment's card from colliding with a StatefulSet's of the
// same name). A name that would exceed the 253 characters of an object
// name is cut, and a hash of the whole keeps it unique.
func CardName(workload, kind string) string {
	suffix := "-" + strings.ToLower(kind) + "-card"
	name := workload + suffix
	if len(name) <= validation.DNS1123SubdomainMaxLength {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	hash := "-" + hex.EncodeToString(sum[:4])
	keep := validation.DNS1123SubdomainMaxLength - len(suffix) - len(hash)
	return strings.TrimRight(workload[:keep], "-.") + hash + suffix
}

// isAgent reports whether a workload's labels make it an agent that
// discovery gives a card: kagenti.io/type=agent and a protocol label.
func isAgent(labels map[string]string) bool {
	if labels[v1alpha1.LabelAgentType] != v1alpha1.AgentTypeAgent {
		return false
	}
	for k, v := range labels {
		switch {
		case strings.HasPrefix(k, v1alpha1.LabelProtocolPrefix):
			return true
		case (k == v1alpha1.LabelProtocolDeprecated || k == v1alpha1.LabelAgentProtocolDeprecated) && v != "":
			return true
		}
	}
	return false
}

func optedOut(labels map[string]string) bool {
	return labels[v1alpha1.LabelDiscovery] == v1alpha1.DiscoveryDisabled
}
