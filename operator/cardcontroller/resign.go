package cardcontroller

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/agentid/agentid/agentcard"
	"github.com/agentid/agentid/api/v1alpha1"
)

// AnnotationResignTrigger is the pod-template annotation whose change
// restarts a workload so that its signer init-container signs the card
// again (Kagenti's name). Its value is the RFC 3339 time of the restart,
// which also debounces the next one.
const AnnotationResignTrigger = "agentcard.kagenti.dev/resign-trigger"

// resignReason says why a workload must sign its card again, or "" when it
// need not: its accepted SVID or signature expires within the grace
// period, or a card that verified before now fails because its chain no
// longer reaches the bundle (the signing CA was rotated out). Any other
// bundle change, and any other failure, restarts nothing.
func (r *Reconciler) resignReason(old *v1alpha1.AgentCardStatus, res *agentcard.Result) string {
	grace := r.opts.ResignGracePeriod
	if grace <= 0 {
		return ""
	}
	now := r.opts.Now()
	if res.Verified {
		if exp := expiry(res); !exp.IsZero() && exp.Sub(now) < grace {
			return fmt.Sprintf("its SVID or signature expires at %s, within the %v grace period", exp.UTC().Format(time.RFC3339), grace)
		}
		return ""
	}
	if old.ValidSignature == nil || !*old.ValidSignature {
		return ""
	}
	for _, s := range res.Signatures {
		if s.Reason == agentcard.ReasonChain || s.Reason == agentcard.ReasonUnknownTrustDomain {
			return "its card verified before and its chain no longer reaches the trust bundle (" + string(s.Reason) + ")"
		}
	}
	return ""
}

// resign restarts the workload by setting AnnotationResignTrigger on its
// pod template, unless it did so less than a grace period ago.
func (r *Reconciler) resign(ctx context.Context, card *v1alpha1.AgentCard, w *workload, why string) error {
	now := r.opts.Now()
	if last, err := time.Parse(time.RFC3339, w.template.Annotations[AnnotationResignTrigger]); err == nil && now.Sub(last) < r.opts.ResignGracePeriod {
		return nil
	}
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{
		"annotations": map[string]string{AnnotationResignTrigger: now.UTC().Format(time.RFC3339)},
	}}}})
	if err != nil {
		return fmt.Errorf("cardcontroller: %w", err)
	}
	if err := r.client.Patch(ctx, w.obj, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("cardcontroller: restarting %s %s to re-sign: %w", w.kind, w.obj.GetName(), err)
	}
	r.recorder.Eventf(card, w.obj, corev1.EventTypeNormal, "ResignTriggered", "Resign", "restarted %s %s to sign its card again: %s", w.kind, w.obj.GetName(), why)
	return nil
}
