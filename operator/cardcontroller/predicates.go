package cardcontroller

import (
	"maps"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/agentid/agentid/api/v1alpha1"
)

// cardChanged passes the AgentCard events that call for a reconcile: a new
// spec (generation) or a deletion. The controller's own writes (finalizer,
// status) change neither, so they do not reconcile the card again.
var cardChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		return e.ObjectOld.GetGeneration() != e.ObjectNew.GetGeneration() ||
			!e.ObjectNew.GetDeletionTimestamp().IsZero()
	},
}

// ownershipChanged passes the AgentCard events that can change which card
// owns a workload: a card created (it may win a tie of creation times by
// name), deleted or being deleted, or moved to another target. Its
// siblings are reconciled then, so that a refused duplicate takes over as
// soon as the owner goes, not a minute later.
var ownershipChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		o, n := e.ObjectOld.(*v1alpha1.AgentCard), e.ObjectNew.(*v1alpha1.AgentCard)
		return o.DeletionTimestamp.IsZero() != n.DeletionTimestamp.IsZero() || o.Spec.TargetRef != n.Spec.TargetRef
	},
	GenericFunc: func(event.GenericEvent) bool { return false },
}

// policyChanged passes the events of the cards' own NetworkPolicies that can
// be drift: updates and deletions. A creation is the controller's own write
// (the first sync of the cache reconciles every card anyway), and waking
// the card for it would fetch and verify every new card twice.
var policyChanged = predicate.Funcs{
	CreateFunc: func(event.CreateEvent) bool { return false },
}

// workloadChanged passes the workload events that can change a card's
// outcome: the object's labels (agent type, protocol), the pod template
// apart from the verified label (selector labels, service account), and
// readiness. The controller's own label patch is none of these.
var workloadChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		return !workloadView(e.ObjectOld).equal(workloadView(e.ObjectNew))
	},
}

// view is what of a workload the reconciler reads.
type view struct {
	labels         map[string]string
	templateLabels map[string]string
	serviceAccount string
	ready          bool
}

func (v view) equal(o view) bool {
	return maps.Equal(v.labels, o.labels) && maps.Equal(v.templateLabels, o.templateLabels) &&
		v.serviceAccount == o.serviceAccount && v.ready == o.ready
}

func workloadView(o client.Object) view {
	var w *workload
	switch o := o.(type) {
	case *appsv1.Deployment:
		w = &workload{obj: o, template: &o.Spec.Template, ready: deploymentReady(o)}
	case *appsv1.StatefulSet:
		w = &workload{obj: o, template: &o.Spec.Template, ready: statefulSetReady(o)}
	case *appsv1.DaemonSet:
		w = &workload{obj: o, template: &o.Spec.Template, ready: daemonSetReady(o)}
	default:
		return view{labels: o.GetLabels()}
	}
	tl := maps.Clone(w.template.Labels)
	delete(tl, v1alpha1.LabelSignatureVerified)
	delete(tl, v1alpha1.LabelSignatureVerifiedRossoctl)
	return view{labels: o.GetLabels(), templateLabels: tl, serviceAccount: w.serviceAccount(), ready: w.ready}
}
