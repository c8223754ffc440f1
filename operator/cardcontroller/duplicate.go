package cardcontroller

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/agentid/agentid/api/v1alpha1"
)

// One workload, one AgentCard. Two cards writing one label would undo each
// other, so the oldest card of a workload (by creationTimestamp, then by
// name: both are fixed at creation, so every replica of the operator and
// every reconcile agrees) owns it, and any other is refused. The rule lives
// in the controller rather than in an admission webhook because two cards
// created at once both pass a webhook's check, and a webhook that is down
// lets anything through.

// duplicateOf returns the name of the AgentCard that owns card's workload
// when that is another card, or "" when card is the owner. Cards being
// deleted own nothing. It names the owner, not merely some older card, so
// that every refused card points at the one to look at, and its message
// changes only when the owner does.
func (r *Reconciler) duplicateOf(ctx context.Context, card *v1alpha1.AgentCard) (string, error) {
	others, err := r.othersTargeting(ctx, card)
	if err != nil {
		return "", err
	}
	owner := card
	for _, o := range others {
		if older(o, owner) {
			owner = o
		}
	}
	if owner == card {
		return "", nil
	}
	return owner.Name, nil
}

// older reports whether a was created before b: by creationTimestamp
// (seconds), then by name.
func older(a, b *v1alpha1.AgentCard) bool {
	at, bt := a.CreationTimestamp, b.CreationTimestamp
	return at.Before(&bt) || at.Equal(&bt) && a.Name < b.Name
}

// othersTargeting lists the other AgentCards of card's namespace that
// target the same workload (group, kind and name) and are not being
// deleted.
func (r *Reconciler) othersTargeting(ctx context.Context, card *v1alpha1.AgentCard) ([]*v1alpha1.AgentCard, error) {
	var list v1alpha1.AgentCardList
	// The cards are only read: no copy out of the cache.
	if err := r.client.List(ctx, &list, client.InNamespace(card.Namespace), client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("cardcontroller: listing AgentCards: %w", err)
	}
	var out []*v1alpha1.AgentCard
	for i := range list.Items {
		o := &list.Items[i]
		if o.Name == card.Name || !o.DeletionTimestamp.IsZero() || !o.Spec.TargetRef.SameWorkload(card.Spec.TargetRef) {
			continue
		}
		out = append(out, o)
	}
	return out, nil
}

// refuseDuplicate makes card's status that of a refused duplicate of the
// card named owner: Synced=False/DuplicateTarget with the Kagenti webhook's
// message, and nothing of a verification (a card that owned the workload
// before an older card took it over loses its published card, signature
// fields, binding and Verified condition). The card is not fetched, never
// verified and never touches the workload's label.
func (r *Reconciler) refuseDuplicate(card *v1alpha1.AgentCard, owner string) outcome {
	ref := card.Spec.TargetRef
	var kept []metav1.Condition
	for _, c := range card.Status.Conditions {
		if c.Type == v1alpha1.ConditionSynced || c.Type == v1alpha1.ConditionReady {
			kept = append(kept, c)
		}
	}
	card.Status = v1alpha1.AgentCardStatus{Conditions: kept}
	r.setSynced(card, false, v1alpha1.ReasonDuplicateTarget,
		fmt.Sprintf("an AgentCard already targets %s %s in namespace %s: %s", ref.Kind, ref.Name, card.Namespace, owner))
	r.setReady(card)
	return outcome{requeue: retrySlow}
}
