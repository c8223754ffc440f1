package cardcontroller

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/agentid/agentid/api/v1alpha1"
	"github.com/agentid/agentid/operator/netpolicy"
)

// targetIndex indexes AgentCards by "<kind>/<name>" of their target, so that
// a change of a workload reaches the cards that target it.
const targetIndex = "spec.targetRef.kindName"

func targetKey(kind, name string) string { return kind + "/" + name }

// SetupOptions tune the controller.
type SetupOptions struct {
	// Bundle, when not empty, is the trust bundle ConfigMap, whose changes
	// re-verify every card (the manager's cache should be limited to it;
	// see package manager).
	Bundle types.NamespacedName
	// MaxConcurrentReconciles is how many cards are reconciled at once;
	// 0 means 4.
	MaxConcurrentReconciles int
}

// Setup registers the controller with mgr.
func (r *Reconciler) Setup(ctx context.Context, mgr ctrl.Manager, o SetupOptions) error {
	err := mgr.GetFieldIndexer().IndexField(ctx, &v1alpha1.AgentCard{}, targetIndex, func(o client.Object) []string {
		ref := o.(*v1alpha1.AgentCard).Spec.TargetRef
		return []string{targetKey(ref.Kind, ref.Name)}
	})
	if err != nil {
		return fmt.Errorf("cardcontroller: indexing AgentCards: %w", err)
	}
	workers := o.MaxConcurrentReconciles
	if workers <= 0 {
		workers = 4
	}
	bundle := o.Bundle
	b := ctrl.NewControllerManagedBy(mgr).
		Named("agentcard").
		WithOptions(controller.Options{MaxConcurrentReconciles: workers}).
		For(&v1alpha1.AgentCard{}, builder.WithPredicates(cardChanged)).
		Watches(&v1alpha1.AgentCard{}, handler.EnqueueRequestsFromMapFunc(r.siblings), builder.WithPredicates(ownershipChanged)).
		Watches(&appsv1.Deployment{}, handler.EnqueueRequestsFromMapFunc(r.cardsTargeting("Deployment")), builder.WithPredicates(workloadChanged)).
		Watches(&appsv1.StatefulSet{}, handler.EnqueueRequestsFromMapFunc(r.cardsTargeting("StatefulSet")), builder.WithPredicates(workloadChanged)).
		Watches(&appsv1.DaemonSet{}, handler.EnqueueRequestsFromMapFunc(r.cardsTargeting("DaemonSet")), builder.WithPredicates(workloadChanged)).
		Watches(&corev1.Service{}, handler.EnqueueRequestsFromMapFunc(r.cardsWaitingForService))
	if r.opts.NetworkPolicies != nil {
		// Drift of a policy (an edit, a deletion) is reverted; a change of
		// the API server's endpoints rebuilds every restrictive policy.
		b = b.Owns(&networkingv1.NetworkPolicy{}, builder.WithPredicates(policyChanged)).
			Watches(&discoveryv1.EndpointSlice{}, handler.EnqueueRequestsFromMapFunc(r.allCards),
				builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool {
					return o.GetNamespace() == netpolicy.APIServerNamespace && o.GetLabels()[discoveryv1.LabelServiceName] == netpolicy.APIServerService
				})))
	}
	if bundle.Name != "" {
		b = b.Watches(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(r.allCards),
			builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool {
				return o.GetNamespace() == bundle.Namespace && o.GetName() == bundle.Name
			})))
	}
	if err := b.Complete(r); err != nil {
		return fmt.Errorf("cardcontroller: %w", err)
	}
	return nil
}

func (r *Reconciler) cardsTargeting(kind string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		return r.requests(ctx, client.InNamespace(o.GetNamespace()), client.MatchingFields{targetIndex: targetKey(kind, o.GetName())})
	}
}

// siblings maps an AgentCard to the other cards of its workload, which a
// change of this one may make or unmake the workload's owner (see
// duplicateOf). For an update it is called with the old and the new card,
// so a card that moves to another workload wakes both workloads' cards.
func (r *Reconciler) siblings(ctx context.Context, o client.Object) []reconcile.Request {
	card, ok := o.(*v1alpha1.AgentCard)
	if !ok {
		return nil
	}
	ref := card.Spec.TargetRef
	var list v1alpha1.AgentCardList
	if err := r.client.List(ctx, &list, client.InNamespace(card.Namespace), client.MatchingFields{targetIndex: targetKey(ref.Kind, ref.Name)}); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing AgentCards")
		return nil
	}
	var out []reconcile.Request
	for _, c := range list.Items {
		if c.Name != card.Name && c.Spec.TargetRef.SameWorkload(ref) {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: c.Namespace, Name: c.Name}})
		}
	}
	return out
}

// cardsWaitingForService wakes the cards of the Service's namespace that
// found no Service (see waitingCards), not every card of the namespace.
func (r *Reconciler) cardsWaitingForService(_ context.Context, o client.Object) []reconcile.Request {
	cards := r.waiting.in(o.GetNamespace())
	out := make([]reconcile.Request, 0, len(cards))
	for _, c := range cards {
		out = append(out, reconcile.Request{NamespacedName: c})
	}
	return out
}

func (r *Reconciler) allCards(ctx context.Context, _ client.Object) []reconcile.Request {
	return r.requests(ctx)
}

func (r *Reconciler) requests(ctx context.Context, opts ...client.ListOption) []reconcile.Request {
	var list v1alpha1.AgentCardList
	if err := r.client.List(ctx, &list, opts...); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing AgentCards")
		return nil
	}
	out := make([]reconcile.Request, 0, len(list.Items))
	for _, c := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: c.Namespace, Name: c.Name}})
	}
	return out
}
