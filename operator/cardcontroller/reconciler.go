package cardcontroller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/agentid/agentid/agentcard"
	"github.com/agentid/agentid/api/v1alpha1"
	"github.com/agentid/agentid/operator/netpolicy"
	"github.com/agentid/agentid/operator/trustbundle"
)

// Finalizer lets the controller remove the verified label from the workload
// when its AgentCard is deleted. It is Kagenti's name.
const Finalizer = "agentcard.kagenti.dev/finalizer"

// Retry delays, as the Kagenti operator's.
const (
	DefaultSyncPeriod = 30 * time.Second
	retrySlow         = time.Minute
	retryNotReady     = 10 * time.Second
	retryService      = 30 * time.Second
	retryBundle       = 30 * time.Second
)

// maxMessage bounds the messages written to the status and to events.
const maxMessage = 1024

// BundleSource gives the trust bundles to verify cards against, one per
// trust domain; a *trustbundle.ConfigMap is one. Each signature's chain is
// checked against the bundle of its own SPIFFE ID's trust domain only, and
// the binding requires the trust domain the card names.
type BundleSource interface {
	Bundles(ctx context.Context) (*x509bundle.Set, error)
}

// Options configure a Reconciler; the operator's flags set them.
type Options struct {
	// RequireSignature (--require-a2a-signature) verifies the cards and
	// labels the workloads; without it cards are only fetched.
	RequireSignature bool
	// TrustDomain (--spire-trust-domain) is the trust domain that
	// identityBinding binds to unless the card names its own.
	TrustDomain spiffeid.TrustDomain
	// AuditMode (--signature-audit-mode) records failures without acting on
	// them: labels are never removed and rejected cards are published.
	AuditMode bool
	// FetchTimeout bounds one card fetch; 0 means 10s.
	FetchTimeout time.Duration
	// ServiceURL gives the base URL of an agent from its Service and port;
	// nil means ClusterServiceURL.
	ServiceURL func(*corev1.Service, corev1.ServicePort) string
	// Now is the clock of the status times; nil means time.Now.
	Now func() time.Time
	// Metrics, when set, count the verifications.
	Metrics *Metrics
	// ResignGracePeriod (--svid-expiry-grace-period), when positive,
	// restarts a verified workload this long before its SVID or signature
	// expires, and a workload whose card stopped verifying because its
	// signing CA left the bundle, so that it signs its card again; at most
	// once per grace period.
	ResignGracePeriod time.Duration
	// SVIDs, when set, make every card fetch SPIFFE mTLS over https: the
	// operator presents its own SVID, the agent's server must present an
	// SVID of the trust bundle, and that SVID must be the card's signer
	// (not merely a member of the trust domain), so that a verified card
	// cannot be served by another workload. It needs RequireSignature.
	SVIDs x509svid.Source
	// RossoctlLabel (--rossoctl-labels) sets and removes
	// agent.rossoctl.dev/signature-verified together with Kagenti's label.
	RossoctlLabel bool
	// NetworkPolicies (--enforce-network-policies), when set, give each
	// card a NetworkPolicy that follows its Verified condition. It needs
	// RequireSignature.
	NetworkPolicies *netpolicy.Enforcer
}

// Reconciler reconciles AgentCards. It is safe for concurrent use by the
// controller's workers.
type Reconciler struct {
	client   client.Client
	bundles  BundleSource
	recorder events.EventRecorder
	opts     Options
	waiting  waitingCards
}

// New returns a Reconciler that reads and writes through c, verifies
// against bundles and reports events to recorder.
func New(c client.Client, bundles BundleSource, recorder events.EventRecorder, opts Options) (*Reconciler, error) {
	if c == nil {
		return nil, errors.New("cardcontroller: no client")
	}
	if recorder == nil {
		return nil, errors.New("cardcontroller: no event recorder")
	}
	if opts.RequireSignature && bundles == nil {
		return nil, errors.New("cardcontroller: verifying signatures needs a trust bundle")
	}
	if opts.SVIDs != nil && !opts.RequireSignature {
		return nil, errors.New("cardcontroller: SPIFFE mTLS fetching needs signature verification (its peer is checked against the card's signer)")
	}
	if opts.NetworkPolicies != nil && !opts.RequireSignature {
		return nil, errors.New("cardcontroller: network policies need signature verification (without it every agent would be isolated)")
	}
	if opts.ServiceURL == nil {
		opts.ServiceURL = ClusterServiceURL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Reconciler{client: c, bundles: bundles, recorder: recorder, opts: opts}, nil
}

// +kubebuilder:rbac:groups=agent.kagenti.dev,resources=agentcards,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=agent.kagenti.dev,resources=agentcards/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=agent.kagenti.dev,resources=agentcards/finalizers,verbs=update
// +kubebuilder:rbac:groups=apps,resources=deployments;statefulsets,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=apps,resources=daemonsets,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch

// Reconcile brings one AgentCard's status, and its workload's label, in
// line with the card its workload serves now.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	var card v1alpha1.AgentCard
	if err := r.client.Get(ctx, req.NamespacedName, &card); err != nil {
		if apierrors.IsNotFound(err) {
			r.waiting.remove(req.NamespacedName)
		}
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if !card.DeletionTimestamp.IsZero() {
		return reconcile.Result{}, r.finalize(ctx, &card)
	}
	if !controllerutil.ContainsFinalizer(&card, Finalizer) {
		patch := client.MergeFromWithOptions(card.DeepCopy(), client.MergeFromWithOptimisticLock{})
		controllerutil.AddFinalizer(&card, Finalizer)
		if err := r.client.Patch(ctx, &card, patch); err != nil {
			return reconcile.Result{}, fmt.Errorf("cardcontroller: adding the finalizer: %w", err)
		}
	}

	old := card.Status.DeepCopy()
	s := r.evaluate(ctx, &card)
	if s.err != nil {
		return reconcile.Result{}, s.err
	}
	policyErr := r.enforceNetwork(ctx, &card, s)
	card.Status.ObservedGeneration = card.Generation
	if !equality.Semantic.DeepEqual(old, &card.Status) {
		if err := r.client.Status().Update(ctx, &card); err != nil {
			return reconcile.Result{}, fmt.Errorf("cardcontroller: writing the status: %w", err)
		}
		r.emitEvents(&card, old, s)
	}
	if s.workload != nil && s.workload.readOnly {
		// Verified and reported only: see workload.readOnly.
		s.label, s.resign = labelKeep, ""
	}
	if s.workload != nil && s.label != labelKeep {
		if err := r.applyLabel(ctx, &card, s.workload, s.label == labelSet); err != nil {
			return reconcile.Result{}, err
		}
	}
	if s.workload != nil && s.resign != "" {
		if err := r.resign(ctx, &card, s.workload, s.resign); err != nil {
			return reconcile.Result{}, err
		}
	}
	if policyErr != nil {
		// Written into the condition above; retried with backoff.
		return reconcile.Result{}, policyErr
	}
	return reconcile.Result{RequeueAfter: s.requeue}, nil
}

// labelIntent is what to do with the workload's verified label.
type labelIntent int

const (
	labelKeep labelIntent = iota
	labelSet
	labelRemove
)

// outcome is the result of one evaluation.
type outcome struct {
	workload *workload
	// duplicate: an older card owns the workload (and its policy).
	duplicate bool
	// notAgent: the workload is no longer an agent; nothing vouches for it.
	notAgent bool
	label    labelIntent
	resign   string // why the workload must sign again; "" if not
	requeue  time.Duration
	err      error // an API failure: retried with backoff, status untouched
}

// evaluate computes the card's new status in place.
func (r *Reconciler) evaluate(ctx context.Context, card *v1alpha1.AgentCard) outcome {
	st := &card.Status
	dup, err := r.duplicateOf(ctx, card)
	if err != nil {
		return outcome{err: err}
	}
	if dup != "" {
		out := r.refuseDuplicate(card, dup)
		out.duplicate = true
		return out
	}
	w, err := r.resolve(ctx, card)
	if err != nil {
		out := r.syncFailed(card, err, w)
		if w != nil {
			out.notAgent = true
			if r.opts.RequireSignature && !r.opts.AuditMode {
				// No longer an agent: nothing vouches for it any more.
				out.label = labelRemove
			}
		}
		return out
	}
	st.TargetRef = objectRef(card)
	if !w.ready {
		return r.syncFailed(card, &syncError{
			reason:  v1alpha1.ReasonWorkloadNotReady,
			message: fmt.Sprintf("%s %s is not ready", w.kind, w.obj.GetName()),
			requeue: requeueNotReady,
		}, w)
	}
	proto, err := protocol(w)
	if err != nil {
		return r.syncFailed(card, err, w)
	}
	st.Protocol = proto
	if proto != v1alpha1.ProtocolA2A {
		return r.syncFailed(card, &syncError{
			reason:  v1alpha1.ReasonFetchFailed,
			message: "unsupported protocol: " + proto,
			requeue: requeueSlow,
		}, w)
	}
	key := types.NamespacedName{Namespace: card.Namespace, Name: card.Name}
	r.waiting.add(key) // before the cache is read: see waitingCards
	svc, err := r.service(ctx, card.Namespace, w)
	if err != nil {
		return r.syncFailed(card, err, w)
	}
	r.waiting.remove(key)
	url := r.opts.ServiceURL(svc, servicePort(svc))

	// The bundle comes first: an mTLS fetch checks the server against it.
	var bundles *x509bundle.Set
	if r.opts.RequireSignature {
		bundles, err = r.bundles.Bundles(ctx)
		if err != nil {
			msg := clip(err.Error())
			r.setSynced(card, false, v1alpha1.ReasonTrustBundleUnavailable, msg)
			r.setCondition(card, v1alpha1.ConditionSignatureVerified, metav1.ConditionUnknown, v1alpha1.ReasonTrustBundleUnavailable, msg)
			r.setCondition(card, v1alpha1.ConditionVerified, metav1.ConditionUnknown, v1alpha1.ReasonTrustBundleUnavailable, msg)
			r.setReady(card)
			return outcome{workload: w, requeue: retryBundle}
		}
	}
	fo := agentcard.FetchOptions{Timeout: r.opts.FetchTimeout}
	if r.opts.SVIDs != nil {
		fo.SVIDs, fo.Bundles = r.opts.SVIDs, bundles
		if rest, ok := strings.CutPrefix(url, "http://"); ok {
			url = "https://" + rest
		}
	}
	fetched, err := agentcard.FetchCard(ctx, url, fo)
	if err != nil {
		return r.syncFailed(card, &syncError{reason: v1alpha1.ReasonFetchFailed, message: err.Error(), requeue: requeueSlow}, w)
	}
	raw := fetched.Card
	cardID, parsedOK := contentID(raw)

	if !r.opts.RequireSignature {
		r.publish(card, raw, cardID, parsedOK)
		r.setSynced(card, true, v1alpha1.ReasonSyncSucceeded, "Successfully fetched agent card for "+card.Name)
		r.setReady(card)
		return outcome{workload: w, requeue: syncPeriod(card)}
	}

	prev := st.DeepCopy()
	began := time.Now()
	res, bindingNote := r.verify(card, w, bundles, raw)
	r.opts.Metrics.observe(res, r.opts.AuditMode, time.Since(began))
	st.AttestedAgentSpiffeID = ""
	var servedBy error // the server is not the card's signer
	if !fetched.PeerID.IsZero() {
		st.AttestedAgentSpiffeID = fetched.PeerID.String()
		if res.Verified {
			servedBy = fetched.CheckSigner(res)
		}
	}
	sigOK := res.Verified
	ib := card.Spec.IdentityBinding
	bound := res.Binding != nil && res.Binding.Bound
	verified := sigOK && (ib == nil || bound || !ib.Strict) && servedBy == nil
	enforce := !r.opts.AuditMode

	st.ValidSignature = &sigOK
	st.SignatureVerificationDetails = details(res)
	st.SignatureKeyID = res.KeyID
	st.SignatureSpiffeID = ""
	if sigOK {
		st.SignatureSpiffeID = res.SPIFFEID
	}
	if ib != nil {
		match := sigOK && bound
		st.SignatureIdentityMatch = &match
		if td := r.cardTrustDomain(card); !td.IsZero() && !bundles.Has(td) && !bound {
			// Say why no signer can be bound, rather than the mismatch
			// the verifier saw.
			r.writeBinding(card, v1alpha1.BindingStatus{Reason: v1alpha1.ReasonTrustDomainNotInBundle, Message: clip(fmt.Sprintf(
				"no trust bundle for trust domain %s: the trust bundle ConfigMap holds %s", td.Name(), strings.Join(trustbundle.TrustDomains(bundles), ", ")))})
		} else {
			r.setBinding(card, res.Binding, bindingNote)
		}
	} else {
		st.SignatureIdentityMatch = nil
		st.BindingStatus = nil
		st.ExpectedSpiffeID = ""
		meta.RemoveStatusCondition(&st.Conditions, v1alpha1.ConditionBound)
	}

	if verified || !enforce {
		r.publish(card, raw, cardID, parsedOK)
	} else {
		st.Card = nil
		st.CardID = cardID
	}

	switch {
	case sigOK:
		r.setSynced(card, true, v1alpha1.ReasonSyncSucceeded, "Successfully fetched agent card for "+card.Name)
		r.setCondition(card, v1alpha1.ConditionSignatureVerified, metav1.ConditionTrue, v1alpha1.ReasonSignatureValid,
			fmt.Sprintf("JWS signature verified successfully (alg=%s, kid=%s)", res.Algorithm, res.KeyID))
	case enforce:
		r.setSynced(card, false, v1alpha1.ReasonSignatureInvalid, st.SignatureVerificationDetails)
		r.setCondition(card, v1alpha1.ConditionSignatureVerified, metav1.ConditionFalse, v1alpha1.ReasonSignatureInvalid, st.SignatureVerificationDetails)
	default:
		r.setSynced(card, true, v1alpha1.ReasonSyncSucceeded, "Fetched agent card for "+card.Name+" (signature verification failed but audit mode enabled)")
		r.setCondition(card, v1alpha1.ConditionSignatureVerified, metav1.ConditionFalse, v1alpha1.ReasonSignatureInvalidAudit, clip(st.SignatureVerificationDetails+" (audit mode: allowed)"))
	}
	switch {
	case verified && !fetched.PeerID.IsZero():
		r.setCondition(card, v1alpha1.ConditionVerified, metav1.ConditionTrue, v1alpha1.ReasonMTLSVerified, verifiedMessage(res, ib, bound)+"; served over SPIFFE mTLS by its signer")
	case verified:
		r.setCondition(card, v1alpha1.ConditionVerified, metav1.ConditionTrue, v1alpha1.ReasonSignatureVerified, verifiedMessage(res, ib, bound))
	case servedBy != nil:
		r.setCondition(card, v1alpha1.ConditionVerified, metav1.ConditionFalse, v1alpha1.ReasonNotVerified, clip(servedBy.Error()))
	case !sigOK:
		r.setCondition(card, v1alpha1.ConditionVerified, metav1.ConditionFalse, v1alpha1.ReasonSignatureInvalid, st.SignatureVerificationDetails)
	default:
		r.setCondition(card, v1alpha1.ConditionVerified, metav1.ConditionFalse, v1alpha1.ReasonNotVerified, "signature verified but the signer is not bound: "+st.BindingStatus.Message)
	}
	r.setReady(card)

	out := outcome{workload: w, requeue: syncPeriod(card), resign: r.resignReason(prev, res)}
	switch {
	case verified:
		out.label = labelSet
		// Look again when the accepted signature or its SVID expires, so
		// that the status does not stay verified past it.
		if exp := expiry(res); !exp.IsZero() {
			if d := exp.Sub(r.opts.Now()) + time.Second; d < out.requeue {
				out.requeue = max(d, time.Second)
			}
		}
	case enforce:
		out.label = labelRemove
		if !sigOK {
			out.requeue = retrySlow
		}
	}
	return out
}

// verify builds the card's verifier and runs it. The note, when not empty,
// explains a binding that could not even be configured.
func (r *Reconciler) verify(card *v1alpha1.AgentCard, w *workload, bundle *x509bundle.Set, raw []byte) (*agentcard.Result, string) {
	opts, expected, note := r.bindingOptions(card, w)
	card.Status.ExpectedSpiffeID = expected
	v, err := agentcard.NewVerifier(bundle, opts...)
	if err != nil {
		// A binding that contradicts itself (an expected ID outside the
		// operator's trust domain): verify the signature, bind nothing.
		note = clip(err.Error())
		v, err = agentcard.NewVerifier(bundle, agentcard.WithBinding())
		if err != nil {
			return &agentcard.Result{SignatureIndex: -1, Details: err.Error()}, note
		}
	}
	res, _ := v.Verify(raw)
	return res, note
}

// cardTrustDomain is the trust domain the card binds to: its
// identityBinding.trustDomain, else the operator's; zero when the card has
// no identityBinding or names no valid trust domain.
func (r *Reconciler) cardTrustDomain(card *v1alpha1.AgentCard) spiffeid.TrustDomain {
	ib := card.Spec.IdentityBinding
	switch {
	case ib == nil:
		return spiffeid.TrustDomain{}
	case ib.TrustDomain != "":
		td, _ := spiffeid.TrustDomainFromString(ib.TrustDomain)
		return td
	}
	return r.opts.TrustDomain
}

// bindingOptions turns spec.identityBinding into verifier options: the trust
// domain is the card's or the operator's, and the expected ID is the card's
// or the Kubernetes ID of the workload's service account.
func (r *Reconciler) bindingOptions(card *v1alpha1.AgentCard, w *workload) ([]agentcard.VerifierOption, string, string) {
	ib := card.Spec.IdentityBinding
	if ib == nil {
		return nil, "", ""
	}
	td := r.opts.TrustDomain
	if ib.TrustDomain != "" {
		parsed, err := spiffeid.TrustDomainFromString(ib.TrustDomain)
		if err != nil {
			return []agentcard.VerifierOption{agentcard.WithBinding()}, "", clip("spec.identityBinding.trustDomain: " + err.Error())
		}
		td = parsed
	}
	if td.IsZero() {
		return []agentcard.VerifierOption{agentcard.WithBinding()}, "", ""
	}
	opts := []agentcard.VerifierOption{agentcard.WithTrustDomain(td)}
	switch exp := ib.ExpectedSpiffeID; {
	case strings.Contains(exp, "*"):
		return append(opts, agentcard.WithExpectedIDPattern(exp)), exp, ""
	case exp != "":
		id, err := spiffeid.FromString(exp)
		if err != nil {
			return []agentcard.VerifierOption{agentcard.WithBinding()}, exp, clip("spec.identityBinding.expectedSpiffeID: " + err.Error())
		}
		return append(opts, agentcard.WithExpectedID(id)), exp, ""
	}
	id, err := agentcard.KubernetesID(td, card.Namespace, w.serviceAccount())
	if err != nil {
		return []agentcard.VerifierOption{agentcard.WithBinding()}, "", clip(err.Error())
	}
	return append(opts, agentcard.WithExpectedID(id)), id.String(), ""
}

// setBinding writes status.bindingStatus and the Bound condition.
// lastEvaluationTime changes only with bound, reason or message.
func (r *Reconciler) setBinding(card *v1alpha1.AgentCard, b *agentcard.Binding, note string) {
	next := v1alpha1.BindingStatus{Reason: v1alpha1.ReasonNotBound}
	switch {
	case note != "":
		next.Message = note
	case b != nil:
		next.Bound, next.Reason, next.Message = b.Bound, b.Reason, clip(b.Message)
	default:
		next.Message = "no binding result"
	}
	r.writeBinding(card, next)
}

func (r *Reconciler) writeBinding(card *v1alpha1.AgentCard, next v1alpha1.BindingStatus) {
	st := &card.Status
	if prev := st.BindingStatus; prev != nil && prev.Bound == next.Bound && prev.Reason == next.Reason && prev.Message == next.Message {
		next.LastEvaluationTime = prev.LastEvaluationTime
	} else {
		now := metav1.NewTime(r.opts.Now().Truncate(time.Second))
		next.LastEvaluationTime = &now
	}
	st.BindingStatus = &next
	status := metav1.ConditionFalse
	if next.Bound {
		status = metav1.ConditionTrue
	}
	r.setCondition(card, v1alpha1.ConditionBound, status, next.Reason, next.Message)
}

// syncFailed records a failure before verification. API errors are
// returned for a retry with backoff; the rest become the Synced condition.
func (r *Reconciler) syncFailed(card *v1alpha1.AgentCard, err error, w *workload) outcome {
	var se *syncError
	if !errors.As(err, &se) {
		return outcome{err: err}
	}
	r.setSynced(card, false, se.reason, clip(se.message))
	if card.Spec.IdentityBinding != nil && (se.reason == v1alpha1.ReasonWorkloadNotFound || se.reason == v1alpha1.ReasonNotAgentWorkload) {
		msg := "No matching workload found"
		if se.reason == v1alpha1.ReasonNotAgentWorkload {
			msg = "Referenced resource is not an agent"
		}
		r.writeBinding(card, v1alpha1.BindingStatus{Reason: v1alpha1.ReasonAgentNotFound, Message: msg})
		f := false
		card.Status.SignatureIdentityMatch = &f
	}
	r.setReady(card)
	out := outcome{workload: w}
	switch se.requeue {
	case requeueNotReady:
		out.requeue = retryNotReady
	case requeueService:
		out.requeue = retryService
	default:
		out.requeue = retrySlow
	}
	return out
}

// publish sets status.card and status.cardId; lastSyncTime moves when the
// content changes. The card is stored as served; when its content is the
// one already stored, the stored copy is kept (the API server re-encodes
// it), so that an unchanged card causes no write.
func (r *Reconciler) publish(card *v1alpha1.AgentCard, raw []byte, id string, parsed bool) {
	st := &card.Status
	if !parsed {
		st.Card = nil
	} else if st.Card == nil || st.CardID != id {
		st.Card = &runtime.RawExtension{Raw: append([]byte(nil), raw...)}
	}
	if st.CardID != id || st.LastSyncTime == nil {
		now := metav1.NewTime(r.opts.Now().Truncate(time.Second))
		st.LastSyncTime = &now
	}
	st.CardID = id
}

func (r *Reconciler) setSynced(card *v1alpha1.AgentCard, ok bool, reason, message string) {
	status := metav1.ConditionFalse
	if ok {
		status = metav1.ConditionTrue
	}
	r.setCondition(card, v1alpha1.ConditionSynced, status, reason, message)
}

// setReady derives Ready: Synced, and Verified or not evaluated.
func (r *Reconciler) setReady(card *v1alpha1.AgentCard) {
	conds := card.Status.Conditions
	synced := meta.IsStatusConditionTrue(conds, v1alpha1.ConditionSynced)
	v := meta.FindStatusCondition(conds, v1alpha1.ConditionVerified)
	switch {
	case !synced:
		r.setCondition(card, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonNotSynced, "the agent card is not synced")
	case v != nil && v.Status != metav1.ConditionTrue:
		r.setCondition(card, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonNotVerified, "the agent card is not verified")
	default:
		r.setCondition(card, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReadyToServe, "Agent index is ready for queries")
	}
}

func (r *Reconciler) setCondition(card *v1alpha1.AgentCard, typ string, status metav1.ConditionStatus, reason, message string) {
	meta.SetStatusCondition(&card.Status.Conditions, metav1.Condition{
		Type:               typ,
		Status:             status,
		Reason:             reason,
		Message:            clip(message),
		ObservedGeneration: card.Generation,
		LastTransitionTime: metav1.NewTime(r.opts.Now().Truncate(time.Second)),
	})
}

// applyLabel sets or removes the verified label (and its rossoctl twin,
// with RossoctlLabel) on the workload's pod template with a merge patch of
// those keys, and only when one differs.
func (r *Reconciler) applyLabel(ctx context.Context, card *v1alpha1.AgentCard, w *workload, set bool) error {
	keys := r.labelKeys()
	differs := false
	for _, k := range keys {
		v, has := w.template.Labels[k]
		differs = differs || set && (!has || v != "true") || !set && has
	}
	if !differs {
		return nil
	}
	value := "null"
	if set {
		value = `"true"`
	}
	labels := make([]string, len(keys))
	for i, k := range keys {
		labels[i] = `"` + k + `":` + value
	}
	patch := []byte(`{"spec":{"template":{"metadata":{"labels":{` + strings.Join(labels, ",") + `}}}}}`)
	if err := r.client.Patch(ctx, w.obj, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("cardcontroller: labelling %s %s: %w", w.kind, w.obj.GetName(), err)
	}
	// Only the removal is an event: setting the label follows the
	// SignatureEvaluated and BindingEvaluated events, and every event is
	// one more write to the API server.
	if !set {
		r.recorder.Eventf(card, w.obj, corev1.EventTypeWarning, "LabelRemoved", "Label", "%s removed from the pod template of %s %s", strings.Join(keys, " and "), w.kind, w.obj.GetName())
	}
	return nil
}

// labelKeys are the verified labels the reconciler sets.
func (r *Reconciler) labelKeys() []string {
	if r.opts.RossoctlLabel {
		return []string{v1alpha1.LabelSignatureVerified, v1alpha1.LabelSignatureVerifiedRossoctl}
	}
	return []string{v1alpha1.LabelSignatureVerified}
}

// finalize removes the verified label from the workload, then the
// finalizer.
func (r *Reconciler) finalize(ctx context.Context, card *v1alpha1.AgentCard) error {
	if !controllerutil.ContainsFinalizer(card, Finalizer) {
		return nil
	}
	// While another card targets the workload, the label is that card's
	// to keep or remove: it owns the workload now (or did all along, when
	// this one is a duplicate), and removing the label here only for it to
	// be set again would roll the workload twice.
	others, err := r.othersTargeting(ctx, card)
	if err != nil {
		return err
	}
	w, err := r.resolve(ctx, card)
	var se *syncError
	switch {
	case len(others) > 0:
	case w != nil && w.readOnly:
		// Never labelled, so nothing to remove.
	case err == nil || errors.As(err, &se) && w != nil:
		if err := r.applyLabel(ctx, card, w, false); err != nil {
			return err
		}
	case errors.As(err, &se):
		// The workload is gone or of a kind that is never labelled.
	default:
		return err
	}
	if np := r.opts.NetworkPolicies; np != nil {
		if err := np.Release(ctx, card); err != nil {
			return err
		}
	}
	patch := client.MergeFromWithOptions(card.DeepCopy(), client.MergeFromWithOptimisticLock{})
	controllerutil.RemoveFinalizer(card, Finalizer)
	if err := r.client.Patch(ctx, card, patch); err != nil {
		return fmt.Errorf("cardcontroller: removing the finalizer: %w", err)
	}
	return nil
}

// emitEvents reports the transitions between the old and new status.
func (r *Reconciler) emitEvents(card *v1alpha1.AgentCard, old *v1alpha1.AgentCardStatus, s outcome) {
	var related runtime.Object
	if s.workload != nil {
		related = s.workload.obj
	}
	st := &card.Status
	if c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionSynced); c != nil && c.Reason == v1alpha1.ReasonDuplicateTarget {
		if o := meta.FindStatusCondition(old.Conditions, v1alpha1.ConditionSynced); o == nil || o.Message != c.Message {
			r.recorder.Eventf(card, nil, corev1.EventTypeWarning, v1alpha1.ReasonDuplicateTarget, "Sync", "%s", c.Message)
		}
	}
	if old.CardID != "" && st.CardID != "" && old.CardID != st.CardID {
		r.recorder.Eventf(card, related, corev1.EventTypeWarning, "CardContentChanged", "Fetch", "card content changed: cardId %s -> %s", short(old.CardID), short(st.CardID))
	}
	if changed(old.Conditions, st.Conditions, v1alpha1.ConditionSignatureVerified) {
		c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionSignatureVerified)
		switch c.Status {
		case metav1.ConditionTrue:
			r.recorder.Eventf(card, related, corev1.EventTypeNormal, "SignatureEvaluated", "Verify", "Signature verified successfully (keyID=%s)", st.SignatureKeyID)
		case metav1.ConditionFalse:
			r.recorder.Eventf(card, related, corev1.EventTypeWarning, "SignatureFailed", "Verify", "%s", c.Message)
		}
	}
	if changed(old.Conditions, st.Conditions, v1alpha1.ConditionBound) {
		c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionBound)
		switch {
		case c.Status == metav1.ConditionTrue:
			r.recorder.Eventf(card, related, corev1.EventTypeNormal, "BindingEvaluated", "Bind", "%s", c.Message)
		case c.Reason == v1alpha1.ReasonAgentNotFound:
			r.recorder.Eventf(card, related, corev1.EventTypeWarning, "AgentNotFound", "Bind", "%s", c.Message)
		default:
			r.recorder.Eventf(card, related, corev1.EventTypeWarning, "BindingFailed", "Bind", "%s", c.Message)
		}
	}
}

// changed reports whether condition typ appeared or changed its status.
func changed(old, cur []metav1.Condition, typ string) bool {
	c := meta.FindStatusCondition(cur, typ)
	if c == nil {
		return false
	}
	o := meta.FindStatusCondition(old, typ)
	return o == nil || o.Status != c.Status
}

// contentID is the cardId: SHA-256 hex of the signed content (RFC 8785 of
// the card without its signatures). ok is false for a card that does not
// parse, whose raw bytes are hashed instead.
func contentID(raw []byte) (string, bool) {
	c, err := agentcard.ParseCard(raw)
	if err == nil {
		if p, err := c.Payload(); err == nil {
			sum := sha256.Sum256(p)
			return hex.EncodeToString(sum[:]), true
		}
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:]), false
}

// expiry is the earlier of the accepted signature's exp and its SVID's
// NotAfter.
func expiry(res *agentcard.Result) time.Time {
	var t time.Time
	for _, p := range []*time.Time{res.LeafNotAfter, res.ExpiresAt} {
		if p != nil && (t.IsZero() || p.Before(t)) {
			t = *p
		}
	}
	return t
}

func verifiedMessage(res *agentcard.Result, ib *v1alpha1.IdentityBinding, bound bool) string {
	switch {
	case ib == nil:
		return "signature of " + res.SPIFFEID + " verified"
	case bound:
		return "signature of " + res.SPIFFEID + " verified and bound"
	default:
		return "signature of " + res.SPIFFEID + " verified; binding not enforced (identityBinding.strict is false)"
	}
}

// details is the Kagenti summary of a result, followed, when no signature
// verified, by each signature's own reason, so that an expired SVID, a
// tampered card and a foreign trust domain can be told apart.
func details(res *agentcard.Result) string {
	if res.Verified || len(res.Signatures) == 0 {
		return clip(res.Details)
	}
	var b strings.Builder
	b.WriteString(res.Details)
	for i, s := range res.Signatures {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "signature %d: %s", s.Index, s.Reason)
		if s.Error != "" {
			b.WriteString(" (" + s.Error + ")")
		}
		if b.Len() > maxMessage {
			break
		}
	}
	return clip(b.String())
}

// syncPeriod is spec.syncPeriod, or the default when unset or invalid.
func syncPeriod(card *v1alpha1.AgentCard) time.Duration {
	if p := card.Spec.SyncPeriod; p != nil && p.Duration >= time.Second {
		return p.Duration
	}
	return DefaultSyncPeriod
}

// clip cuts s to maxMessage bytes on a rune boundary.
func clip(s string) string {
	if len(s) <= maxMessage {
		return s
	}
	cut := maxMessage - len("…")
	for cut > 0 && !utf8RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
