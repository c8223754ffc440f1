package netpolicy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/agentid/agentid/api/v1alpha1"
)

// Verdict is what the card's verification says about its workload.
type Verdict int

const (
	// Unverified: the card is not verified, or not evaluated yet.
	// Restrictive, except in audit mode.
	Unverified Verdict = iota
	// Verified: permissive.
	Verified
	// Undecided: the verification could not run (the trust bundle cannot
	// be loaded). The policy in place is kept; without one, as Unverified.
	Undecided
)

// Decision is one card's input to Apply.
type Decision struct {
	Verdict Verdict
	// Audit never applies the restrictive policy.
	Audit bool
	// Why explains the verdict (the Verified condition's message).
	Why string
	// Selector is the workload's spec.selector.
	Selector *metav1.LabelSelector
}

// Outcome is the NetworkPolicyApplied condition for the card.
type Outcome struct {
	Status  metav1.ConditionStatus
	Reason  string
	Message string
}

// Options configure an Enforcer.
type Options struct {
	// Client reads (from the manager's cache) and writes policies, and
	// lists the API server's EndpointSlices.
	Client client.Client
	// APIReader reads a policy past the cache when creating it finds the
	// name taken (the cache holds only the operator's own policies); nil
	// means Client.
	APIReader client.Reader
	// Recorder reports policy flips and conflicts on the AgentCard.
	Recorder events.EventRecorder
	Config   Config
	// Metrics, when set, count cards by policy state.
	Metrics *Metrics
}

// Enforcer applies AgentCards' NetworkPolicies. It is safe for concurrent
// use by the controller's workers.
type Enforcer struct {
	o Options

	mu     sync.Mutex
	states map[types.NamespacedName]string // card -> state, for the metrics and events
}

// NewEnforcer checks o and returns an Enforcer.
func NewEnforcer(o Options) (*Enforcer, error) {
	if o.Client == nil || o.Recorder == nil {
		return nil, errors.New("netpolicy: an Enforcer needs a client and an event recorder")
	}
	if err := o.Config.Validate(); err != nil {
		return nil, err
	}
	if o.APIReader == nil {
		o.APIReader = o.Client
	}
	return &Enforcer{o: o, states: map[types.NamespacedName]string{}}, nil
}

// Card states, the values of the state label of agentid_network_policies.
const (
	statePermissive  = "permissive"
	stateRestrictive = "restrictive"
	stateAudit       = "audit"
	stateConflict    = "conflict"
	stateFailed      = "failed"
	stateNone        = "none"
)

// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch;create;update;delete
// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=list;watch

// Apply brings the card's NetworkPolicy in line with d. An error is an API
// failure, to retry; the outcome then says it too.
func (e *Enforcer) Apply(ctx context.Context, card *v1alpha1.AgentCard, d Decision) (Outcome, error) {
	name := Name(card.Name)
	existing, err := e.get(ctx, e.o.Client, card.Namespace, name)
	if err != nil {
		return e.failed(card, err)
	}
	if existing != nil && !metav1.IsControlledBy(existing, card) {
		return e.conflict(card, existing), nil
	}

	mode, reason := Restrictive, v1alpha1.ReasonPolicyRestrictive
	msg := "restrictive: " + d.Why
	switch {
	case d.Verdict == Verified:
		mode, reason, msg = Permissive, v1alpha1.ReasonPolicyPermissive, "permissive: "+d.Why
	case d.Audit:
		mode, reason, msg = Permissive, v1alpha1.ReasonPolicyAudit, "permissive (audit mode); enforce mode would apply the restrictive policy: "+d.Why
	case d.Verdict == Undecided && existing != nil:
		// Keep what is in place: a trust-bundle outage must neither open
		// nor close every agent.
		kept := Mode(existing.Labels[v1alpha1.LabelNetworkPolicyMode])
		if kept == Permissive || kept == Restrictive {
			e.setState(card, string(kept))
			r := v1alpha1.ReasonPolicyRestrictive
			if kept == Permissive {
				r = v1alpha1.ReasonPolicyPermissive
			}
			return Outcome{metav1.ConditionTrue, r, string(kept) + ", kept while the card cannot be verified: " + d.Why}, nil
		}
	}

	var apiServer []networkingv1.NetworkPolicyEgressRule
	if mode == Restrictive {
		var list discoveryv1.EndpointSliceList
		if err := e.o.Client.List(ctx, &list, client.InNamespace(APIServerNamespace),
			client.MatchingLabels{discoveryv1.LabelServiceName: APIServerService}); err != nil {
			// Never permissive by failure: restrictive without the API
			// server, and say why.
			msg += "; API-server egress denied: listing its EndpointSlices failed: " + err.Error()
		} else {
			var n int
			var note string
			apiServer, n, note = APIServerEgress(list.Items)
			e.o.Metrics.apiServerEndpoints(n)
			if n == 0 {
				msg += "; API-server egress denied: " + note
			}
		}
	}
	desired, err := Build(Spec{Card: card, Selector: d.Selector, Mode: mode, APIServer: apiServer}, e.o.Config)
	if err != nil {
		e.setState(card, stateFailed)
		return Outcome{metav1.ConditionFalse, v1alpha1.ReasonPolicyFailed, err.Error()}, nil
	}
	if err := controllerutil.SetControllerReference(card, desired, e.o.Client.Scheme()); err != nil {
		return e.failed(card, fmt.Errorf("netpolicy: %w", err))
	}

	if existing == nil {
		err := e.o.Client.Create(ctx, desired)
		switch {
		case err == nil:
			e.flipped(card, "", mode, name)
			e.setState(card, stateOf(reason))
			return Outcome{metav1.ConditionTrue, reason, msg}, nil
		case !apierrors.IsAlreadyExists(err):
			return e.failed(card, fmt.Errorf("netpolicy: creating NetworkPolicy %s: %w", name, err))
		}
		// Taken by a policy the cache does not hold (not labelled as
		// ours, or not seen yet): read it from the API server.
		existing, err = e.get(ctx, e.o.APIReader, card.Namespace, name)
		if err != nil {
			return e.failed(card, err)
		}
		if existing == nil {
			return e.failed(card, fmt.Errorf("netpolicy: NetworkPolicy %s was reported to exist and then not found", name))
		}
		if !metav1.IsControlledBy(existing, card) {
			return e.conflict(card, existing), nil
		}
	}
	if !upToDate(existing, desired) {
		was := Mode(existing.Labels[v1alpha1.LabelNetworkPolicyMode])
		next := existing.DeepCopy()
		next.Spec = desired.Spec
		next.OwnerReferences = desired.OwnerReferences
		if next.Labels == nil {
			next.Labels = map[string]string{}
		}
		maps.Copy(next.Labels, desired.Labels)
		if err := e.o.Client.Update(ctx, next); err != nil {
			return e.failed(card, fmt.Errorf("netpolicy: updating NetworkPolicy %s: %w", name, err))
		}
		e.flipped(card, was, mode, name)
	}
	e.setState(card, stateOf(reason))
	return Outcome{metav1.ConditionTrue, reason, msg}, nil
}

// Release deletes the card's policy if the card controls it, and forgets
// the card: the card is being deleted, or another card owns its workload.
// Garbage collection would delete it too, through the ownerReference, but
// only after the card is gone; this makes the removal immediate.
func (e *Enforcer) Release(ctx context.Context, card *v1alpha1.AgentCard) error {
	defer e.forget(card)
	existing, err := e.get(ctx, e.o.Client, card.Namespace, Name(card.Name))
	if err != nil || existing == nil || !metav1.IsControlledBy(existing, card) {
		return err
	}
	// Preconditions: delete exactly the object read, which the card controls.
	err = e.o.Client.Delete(ctx, existing, client.Preconditions{UID: &existing.UID, ResourceVersion: &existing.ResourceVersion})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("netpolicy: deleting NetworkPolicy %s: %w", existing.Name, err)
	}
	return nil
}

// NoPolicy records a card that has no policy to manage (no workload to
// select, or a duplicate of another card), for the metrics.
func (e *Enforcer) NoPolicy(card *v1alpha1.AgentCard) { e.setState(card, stateNone) }

func (e *Enforcer) get(ctx context.Context, r client.Reader, ns, name string) (*networkingv1.NetworkPolicy, error) {
	var np networkingv1.NetworkPolicy
	err := r.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &np)
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("netpolicy: reading NetworkPolicy %s: %w", name, err)
	}
	return &np, nil
}

func (e *Enforcer) conflict(card *v1alpha1.AgentCard, existing *networkingv1.NetworkPolicy) Outcome {
	owner := "no controller"
	if ref := metav1.GetControllerOf(existing); ref != nil {
		owner = "controller " + ref.Kind + " " + ref.Name
	}
	msg := fmt.Sprintf("NetworkPolicy %s already exists with %s; it is not this AgentCard's and is left as it is, so nothing enforces this card's verification", existing.Name, owner)
	if e.setState(card, stateConflict) {
		e.o.Recorder.Eventf(card, existing, corev1.EventTypeWarning, "NetworkPolicyConflict", "NetworkPolicy", "%s", msg)
	}
	return Outcome{metav1.ConditionFalse, v1alpha1.ReasonPolicyConflict, msg}
}

func (e *Enforcer) failed(card *v1alpha1.AgentCard, err error) (Outcome, error) {
	e.setState(card, stateFailed)
	return Outcome{metav1.ConditionFalse, v1alpha1.ReasonPolicyFailed, err.Error()}, err
}

// flipped reports a change of mode, and a policy created restrictive. A
// policy created permissive is no event: the card's SignatureEvaluated says
// as much, and every event is one more write to the API server.
func (e *Enforcer) flipped(card *v1alpha1.AgentCard, was, now Mode, name string) {
	if was == now || was == "" && now == Permissive {
		return
	}
	if now == Permissive {
		e.o.Recorder.Eventf(card, nil, corev1.EventTypeNormal, "NetworkPolicyPermissive", "NetworkPolicy", "NetworkPolicy %s is permissive", name)
		return
	}
	e.o.Recorder.Eventf(card, nil, corev1.EventTypeWarning, "NetworkPolicyRestrictive", "NetworkPolicy", "NetworkPolicy %s is restrictive: only the operator may reach the pods, which may reach DNS and the API server only", name)
}

// upToDate reports whether have already is want: same spec, our labels,
// our ownerReference.
func upToDate(have, want *networkingv1.NetworkPolicy) bool {
	for k, v := range want.Labels {
		if have.Labels[k] != v {
			return false
		}
	}
	return equality.Semantic.DeepEqual(have.Spec, want.Spec) && equality.Semantic.DeepEqual(have.OwnerReferences, want.OwnerReferences)
}

func stateOf(reason string) string {
	switch reason {
	case v1alpha1.ReasonPolicyPermissive:
		return statePermissive
	case v1alpha1.ReasonPolicyAudit:
		return stateAudit
	default:
		return stateRestrictive
	}
}

// setState records the card's state and reports whether it changed.
func (e *Enforcer) setState(card *v1alpha1.AgentCard, s string) bool {
	key := types.NamespacedName{Namespace: card.Namespace, Name: card.Name}
	e.mu.Lock()
	defer e.mu.Unlock()
	old, had := e.states[key]
	if had && old == s {
		return false
	}
	e.states[key] = s
	e.o.Metrics.move(old, had, s)
	return true
}

func (e *Enforcer) forget(card *v1alpha1.AgentCard) {
	key := types.NamespacedName{Namespace: card.Namespace, Name: card.Name}
	e.mu.Lock()
	defer e.mu.Unlock()
	if old, had := e.states[key]; had {
		delete(e.states, key)
		e.o.Metrics.move(old, true, "")
	}
}
