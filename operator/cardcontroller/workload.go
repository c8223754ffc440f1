package cardcontroller

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/agentid/agentid/api/v1alpha1"
)

// workload is a resolved targetRef: a Deployment or a StatefulSet, which
// the operator labels and restarts, or a read-only DaemonSet.
type workload struct {
	obj      client.Object
	kind     string
	template *corev1.PodTemplateSpec
	// selector is the workload's spec.selector, which its NetworkPolicy
	// selects by (immutable, unlike the template's labels).
	selector *metav1.LabelSelector
	ready    bool
	// readOnly: the card is verified and reported, but the workload is
	// never written (no label, no restart). A DaemonSet runs one pod per
	// node: a label flip or a re-signing restart rolls every node of the
	// cluster, node by node, which the operator must not start on its own;
	// the label is also what Kagenti applies to Deployments and
	// StatefulSets only, so nothing selects DaemonSets by it.
	readOnly bool
}

// serviceAccount is the service account of the workload's pods, whose
// SPIFFE ID the card must be signed with by default.
func (w *workload) serviceAccount() string {
	if sa := w.template.Spec.ServiceAccountName; sa != "" {
		return sa
	}
	if sa := w.template.Spec.DeprecatedServiceAccount; sa != "" {
		return sa
	}
	return "default"
}

// syncError is a reason to stop before verification: the Synced condition's
// reason and message, and when to try again.
type syncError struct {
	reason  string
	message string
	requeue requeueKind
}

func (e *syncError) Error() string { return e.message }

// requeueKind names the retry delays of Kagenti's table.
type requeueKind int

const (
	requeueSlow     requeueKind = iota // workload errors, no protocol, fetch failures: 1m
	requeueNotReady                    // workload not ready: 10s
	requeueService                     // no Service: 30s
)

// resolve reads the card's target workload. Errors are *syncError except
// for API failures, which are returned as they are (and retried with
// backoff). A workload that is not an agent is returned with its error.
func (r *Reconciler) resolve(ctx context.Context, card *v1alpha1.AgentCard) (*workload, error) {
	ref := card.Spec.TargetRef
	key := types.NamespacedName{Namespace: card.Namespace, Name: ref.Name}
	var w *workload
	switch {
	case ref.APIVersion == "apps/v1" && ref.Kind == "Deployment":
		var d appsv1.Deployment
		if err := r.client.Get(ctx, key, &d); err != nil {
			return nil, workloadGetError(ref, err)
		}
		w = &workload{obj: &d, kind: ref.Kind, template: &d.Spec.Template, selector: d.Spec.Selector, ready: deploymentReady(&d)}
	case ref.APIVersion == "apps/v1" && ref.Kind == "StatefulSet":
		var s appsv1.StatefulSet
		if err := r.client.Get(ctx, key, &s); err != nil {
			return nil, workloadGetError(ref, err)
		}
		w = &workload{obj: &s, kind: ref.Kind, template: &s.Spec.Template, selector: s.Spec.Selector, ready: statefulSetReady(&s)}
	case ref.APIVersion == "apps/v1" && ref.Kind == "DaemonSet":
		var d appsv1.DaemonSet
		if err := r.client.Get(ctx, key, &d); err != nil {
			return nil, workloadGetError(ref, err)
		}
		w = &workload{obj: &d, kind: ref.Kind, template: &d.Spec.Template, selector: d.Spec.Selector, ready: daemonSetReady(&d), readOnly: true}
	default:
		return nil, &syncError{
			reason:  v1alpha1.ReasonWorkloadError,
			message: fmt.Sprintf("unsupported target %s %s: only apps/v1 Deployment, StatefulSet and DaemonSet (read-only) are supported", ref.APIVersion, ref.Kind),
			requeue: requeueSlow,
		}
	}
	if w.obj.GetLabels()[v1alpha1.LabelAgentType] != v1alpha1.AgentTypeAgent {
		return w, &syncError{
			reason:  v1alpha1.ReasonNotAgentWorkload,
			message: fmt.Sprintf("%s %s does not carry the label %s=%s", ref.Kind, ref.Name, v1alpha1.LabelAgentType, v1alpha1.AgentTypeAgent),
			requeue: requeueSlow,
		}
	}
	return w, nil
}

func workloadGetError(ref v1alpha1.TargetRef, err error) error {
	if apierrors.IsNotFound(err) {
		return &syncError{
			reason:  v1alpha1.ReasonWorkloadNotFound,
			message: fmt.Sprintf("%s %s not found", ref.Kind, ref.Name),
			requeue: requeueSlow,
		}
	}
	return fmt.Errorf("cardcontroller: reading %s %s: %w", ref.Kind, ref.Name, err)
}

// deploymentReady is Kagenti's rule: condition Available=True. A rollout
// in progress (such as the one the verified label starts) keeps a
// Deployment Available, so it does not make the card flap.
func deploymentReady(d *appsv1.Deployment) bool {
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentAvailable {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// statefulSetReady is Kagenti's rule: readyReplicas > 0 and equal to the
// desired replicas.
func statefulSetReady(s *appsv1.StatefulSet) bool {
	want := int32(1)
	if s.Spec.Replicas != nil {
		want = *s.Spec.Replicas
	}
	return s.Status.ReadyReplicas > 0 && s.Status.ReadyReplicas == want
}

// daemonSetReady: at least one pod scheduled, and every scheduled pod
// ready (a DaemonSet has no Available condition; this is its rollout
// status's rule).
func daemonSetReady(d *appsv1.DaemonSet) bool {
	return d.Status.DesiredNumberScheduled > 0 && d.Status.NumberReady == d.Status.DesiredNumberScheduled
}

// protocol returns the agent protocol the workload declares. Unlike
// Kagenti, which takes the first key of a Go map, the choice is
// deterministic: a2a when declared, else the first protocol by name.
func protocol(w *workload) (string, error) {
	var found []string
	for k, v := range w.obj.GetLabels() {
		switch {
		case strings.HasPrefix(k, v1alpha1.LabelProtocolPrefix):
			found = append(found, strings.TrimPrefix(k, v1alpha1.LabelProtocolPrefix))
		case k == v1alpha1.LabelProtocolDeprecated || k == v1alpha1.LabelAgentProtocolDeprecated:
			found = append(found, v)
		}
	}
	if len(found) == 0 {
		return "", &syncError{
			reason:  v1alpha1.ReasonNoProtocol,
			message: "Workload does not have a " + v1alpha1.LabelProtocolPrefix + "<name> label",
			requeue: requeueSlow,
		}
	}
	if slices.Contains(found, v1alpha1.ProtocolA2A) {
		return v1alpha1.ProtocolA2A, nil
	}
	sort.Strings(found)
	return found[0], nil
}

// service finds the Service that routes to the workload's pods: one whose
// selector is not empty and matches the pod template's labels. A Service
// named like the workload is preferred; otherwise the first by name.
func (r *Reconciler) service(ctx context.Context, namespace string, w *workload) (*corev1.Service, error) {
	var list corev1.ServiceList
	if err := r.client.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		return nil, fmt.Errorf("cardcontroller: listing Services: %w", err)
	}
	podLabels := labels.Set(w.template.Labels)
	var match []*corev1.Service
	for i := range list.Items {
		s := &list.Items[i]
		if len(s.Spec.Selector) == 0 || len(s.Spec.Ports) == 0 {
			continue
		}
		if labels.SelectorFromSet(s.Spec.Selector).Matches(podLabels) {
			match = append(match, s)
		}
	}
	if len(match) == 0 {
		return nil, &syncError{
			reason:  v1alpha1.ReasonServiceNotFound,
			message: fmt.Sprintf("no Service with ports in namespace %s selects the pods of %s %s", namespace, w.kind, w.obj.GetName()),
			requeue: requeueService,
		}
	}
	sort.Slice(match, func(i, j int) bool { return match[i].Name < match[j].Name })
	for _, s := range match {
		if s.Name == w.obj.GetName() {
			return s, nil
		}
	}
	return match[0], nil
}

// servicePort picks the port named a2a, else http, else the first.
func servicePort(s *corev1.Service) corev1.ServicePort {
	for _, name := range []string{v1alpha1.ProtocolA2A, "http"} {
		for _, p := range s.Spec.Ports {
			if p.Name == name {
				return p
			}
		}
	}
	return s.Spec.Ports[0]
}

// ClusterServiceURL is the default Options.ServiceURL: the Service's
// cluster DNS name, http://<name>.<namespace>.svc:<port>.
func ClusterServiceURL(s *corev1.Service, p corev1.ServicePort) string {
	return "http://" + net.JoinHostPort(s.Name+"."+s.Namespace+".svc", strconv.Itoa(int(p.Port)))
}

// objectRef is the status.targetRef of a resolved workload.
func objectRef(card *v1alpha1.AgentCard) *v1alpha1.TargetRef {
	ref := card.Spec.TargetRef
	return &ref
}
