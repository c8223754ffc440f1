package cardcontroller

import (
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/agentid/agentid/api/v1alpha1"
)

func TestPredicates(t *testing.T) {
	base := func() *appsv1.Deployment {
		return &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "w", Generation: 1, Labels: map[string]string{v1alpha1.LabelAgentType: "agent"}},
			Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "w"}},
				Spec:       corev1.PodSpec{ServiceAccountName: "sa"},
			}},
			Status: appsv1.DeploymentStatus{Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue}}},
		}
	}
	card := func(gen int64) *v1alpha1.AgentCard {
		return &v1alpha1.AgentCard{ObjectMeta: metav1.ObjectMeta{Name: "c", Generation: gen}}
	}
	tests := []struct {
		name     string
		pass     func(event.UpdateEvent) bool
		old, new client.Object
		want     bool
	}{
		{"the operator's own label patch does not reconcile again", workloadChanged.Update, base(), func() client.Object {
			d := base()
			d.Generation = 2
			d.Spec.Template.Labels[v1alpha1.LabelSignatureVerified] = "true"
			return d
		}(), false},
		{"a workload turning unready reconciles", workloadChanged.Update, base(), func() client.Object {
			d := base()
			d.Status.Conditions[0].Status = corev1.ConditionFalse
			return d
		}(), true},
		{"a new service account reconciles (the expected ID changes)", workloadChanged.Update, base(), func() client.Object {
			d := base()
			d.Spec.Template.Spec.ServiceAccountName = "other"
			return d
		}(), true},
		{"losing the agent label reconciles", workloadChanged.Update, base(), func() client.Object {
			d := base()
			d.Labels = nil
			return d
		}(), true},
		{"a status write on the card does not reconcile it again", cardChanged.Update, card(1), card(1), false},
		{"a new spec reconciles", cardChanged.Update, card(1), card(2), true},
		{"a deletion reconciles", cardChanged.Update, card(1), func() client.Object {
			c := card(1)
			now := metav1.Now()
			c.DeletionTimestamp = &now
			return c
		}(), true},
		{"a status write does not wake the workload's other cards", ownershipChanged.Update, card(1), card(1), false},
		{"a new sync period does not wake the workload's other cards", ownershipChanged.Update, card(1), func() client.Object {
			c := card(2)
			c.Spec.SyncPeriod = &metav1.Duration{Duration: time.Minute}
			return c
		}(), false},
		{"a card being deleted wakes the workload's other cards", ownershipChanged.Update, card(1), func() client.Object {
			c := card(1)
			now := metav1.Now()
			c.DeletionTimestamp = &now
			return c
		}(), true},
		{"a card moving to another workload wakes the cards of both", ownershipChanged.Update, card(1), func() client.Object {
			c := card(2)
			c.Spec.TargetRef.Name = "other"
			return c
		}(), true},
	}
	for _, tt := range tests {
		if got := tt.pass(event.UpdateEvent{ObjectOld: tt.old, ObjectNew: tt.new}); got != tt.want {
			t.Errorf("%s: got %v", tt.name, got)
		}
	}
}

func TestOwnershipChangedPassesCreationsAndDeletions(t *testing.T) {
	c := &v1alpha1.AgentCard{ObjectMeta: metav1.ObjectMeta{Name: "c"}}
	if !ownershipChanged.Create(event.CreateEvent{Object: c}) {
		t.Error("a new card does not wake the workload's other cards (it may win a tie of creation times)")
	}
	if !ownershipChanged.Delete(event.DeleteEvent{Object: c}) {
		t.Error("a deleted card does not wake the workload's other cards")
	}
}

func TestPolicyChangedPassesDriftNotTheControllersOwnCreation(t *testing.T) {
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "w-card-signature-policy"}}
	if policyChanged.Create(event.CreateEvent{Object: np}) {
		t.Error("the creation of a policy wakes its card (every new card would be fetched and verified twice)")
	}
	if !policyChanged.Update(event.UpdateEvent{ObjectOld: np, ObjectNew: np}) {
		t.Error("an edit of a policy does not wake its card: drift would stay")
	}
	if !policyChanged.Delete(event.DeleteEvent{Object: np}) {
		t.Error("the deletion of a policy does not wake its card: it would not be recreated")
	}
}
