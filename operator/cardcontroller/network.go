package cardcontroller

import (
	"context"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/agentid/agentid/api/v1alpha1"
	"github.com/agentid/agentid/operator/netpolicy"
)

// enforceNetwork applies the card's NetworkPolicy (--enforce-network-policies)
// from the outcome of this evaluation and records it in the
// NetworkPolicyApplied condition. The verdict is the Verified condition's:
// True is permissive; False, or no evaluation yet, is restrictive (audit
// mode: permissive, saying what enforce mode would do); Unknown (the trust
// bundle cannot be loaded) keeps what is in place. A workload that is no
// longer an agent is restrictive, as it loses its label. The returned error
// is an API failure, already in the condition, for the caller to retry.
func (r *Reconciler) enforceNetwork(ctx context.Context, card *v1alpha1.AgentCard, s outcome) error {
	np := r.opts.NetworkPolicies
	if np == nil {
		meta.RemoveStatusCondition(&card.Status.Conditions, v1alpha1.ConditionNetworkPolicyApplied)
		return nil
	}
	set := func(status metav1.ConditionStatus, reason, msg string) {
		r.setCondition(card, v1alpha1.ConditionNetworkPolicyApplied, status, reason, msg)
	}
	synced := ""
	if c := meta.FindStatusCondition(card.Status.Conditions, v1alpha1.ConditionSynced); c != nil {
		synced = c.Message
	}
	switch {
	case s.duplicate:
		// Policies add up: a second policy on the same pods could only
		// widen what the owner's allows.
		if err := np.Release(ctx, card); err != nil {
			set(metav1.ConditionFalse, v1alpha1.ReasonPolicyFailed, err.Error())
			return err
		}
		np.NoPolicy(card)
		set(metav1.ConditionFalse, v1alpha1.ReasonDuplicateTarget, "the workload's NetworkPolicy belongs to the AgentCard that owns the workload: "+synced)
		return nil
	case s.workload == nil:
		np.NoPolicy(card)
		set(metav1.ConditionFalse, v1alpha1.ReasonNoWorkload, "no workload to select ("+synced+"); a policy already in place is kept")
		return nil
	}
	d := netpolicy.Decision{Audit: r.opts.AuditMode, Selector: s.workload.selector}
	switch v := meta.FindStatusCondition(card.Status.Conditions, v1alpha1.ConditionVerified); {
	case s.notAgent:
		d.Verdict, d.Why = netpolicy.Unverified, synced
	case v == nil:
		d.Verdict, d.Why = netpolicy.Unverified, "not verified yet: "+synced
	case v.Status == metav1.ConditionTrue:
		d.Verdict, d.Why = netpolicy.Verified, v.Message
	case v.Status == metav1.ConditionUnknown:
		d.Verdict, d.Why = netpolicy.Undecided, v.Message
	default:
		d.Verdict, d.Why = netpolicy.Unverified, v.Message
	}
	out, err := np.Apply(ctx, card, d)
	set(out.Status, out.Reason, out.Message)
	return err
}
