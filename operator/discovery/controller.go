package discovery

import (
	"context"
	"fmt"
	"maps"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/agentid/agentid/api/v1alpha1"
)

// Setup registers the reconciler with mgr as the controller
// agentcard-discovery-<kind>. It reconciles a workload when it appears or
// its labels change, and when an AgentCard that targets it appears, goes
// or moves (a card gone may leave it without one; a card of someone's may
// supersede the discovered one).
func (r *Reconciler) Setup(mgr ctrl.Manager) error {
	err := ctrl.NewControllerManagedBy(mgr).
		Named("agentcard-discovery-"+strings.ToLower(r.kind.name)).
		For(r.kind.newObj(), builder.WithPredicates(labelsChanged)).
		Watches(&v1alpha1.AgentCard{}, handler.EnqueueRequestsFromMapFunc(r.workloadOf), builder.WithPredicates(cardCameOrWent)).
		Complete(r)
	if err != nil {
		return fmt.Errorf("discovery: %w", err)
	}
	return nil
}

// workloadOf maps a card to the workload of this reconciler's kind that it
// targets.
func (r *Reconciler) workloadOf(_ context.Context, o client.Object) []reconcile.Request {
	card, ok := o.(*v1alpha1.AgentCard)
	if !ok || !card.Spec.TargetRef.SameWorkload(v1alpha1.TargetRef{APIVersion: appsv1.SchemeGroupVersion.String(), Kind: r.kind.name, Name: card.Spec.TargetRef.Name}) {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: card.Namespace, Name: card.Spec.TargetRef.Name}}}
}

// labelsChanged passes a workload's creation and the updates that change
// its labels (agent type, protocol, opt-out); status updates, which are
// most of a workload's events, do not pass.
var labelsChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		return !maps.Equal(e.ObjectOld.GetLabels(), e.ObjectNew.GetLabels())
	},
	DeleteFunc:  func(event.DeleteEvent) bool { return false },
	GenericFunc: func(event.GenericEvent) bool { return false },
}

// cardCameOrWent passes a card's creation and deletion, the start of its
// deletion, and a change of its target (the map function then sees the old
// and the new target).
var cardCameOrWent = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		o, n := e.ObjectOld.(*v1alpha1.AgentCard), e.ObjectNew.(*v1alpha1.AgentCard)
		return o.Spec.TargetRef != n.Spec.TargetRef || o.DeletionTimestamp.IsZero() != n.DeletionTimestamp.IsZero()
	},
	GenericFunc: func(event.GenericEvent) bool { return false },
}
