package v1alpha1

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestAddToSchemeRegistersAgentCardAndList(t *testing.T) {
	s := runtime.NewScheme()
	if err := AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"AgentCard", "AgentCardList"} {
		if !s.Recognizes(GroupVersion.WithKind(kind)) {
			t.Errorf("%s is not registered in %s", kind, GroupVersion)
		}
	}
	if GroupVersion.String() != "agent.kagenti.dev/v1alpha1" {
		t.Errorf("GroupVersion = %s, want Kagenti's agent.kagenti.dev/v1alpha1", GroupVersion)
	}
}

func TestDeepCopyIsIndependent(t *testing.T) {
	yes := true
	now := metav1.NewTime(time.Now())
	in := &AgentCard{
		Spec: AgentCardSpec{
			TargetRef:       TargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "w"},
			SyncPeriod:      &metav1.Duration{Duration: time.Minute},
			IdentityBinding: &IdentityBinding{TrustDomain: "example.org", Strict: true},
		},
		Status: AgentCardStatus{
			Card:           &runtime.RawExtension{Raw: []byte(`{"name":"w"}`)},
			ValidSignature: &yes,
			BindingStatus:  &BindingStatus{Bound: true, LastEvaluationTime: &now},
			Conditions:     []metav1.Condition{{Type: ConditionSynced, Status: metav1.ConditionTrue}},
		},
	}
	out := in.DeepCopy()
	out.Spec.IdentityBinding.TrustDomain = "other.org"
	out.Spec.SyncPeriod.Duration = time.Hour
	out.Status.Card.Raw[2] = 'X'
	*out.Status.ValidSignature = false
	out.Status.BindingStatus.Bound = false
	out.Status.Conditions[0].Status = metav1.ConditionFalse
	switch {
	case in.Spec.IdentityBinding.TrustDomain != "example.org",
		in.Spec.SyncPeriod.Duration != time.Minute,
		string(in.Status.Card.Raw) != `{"name":"w"}`,
		!*in.Status.ValidSignature,
		!in.Status.BindingStatus.Bound,
		in.Status.Conditions[0].Status != metav1.ConditionTrue:
		t.Fatalf("changing the copy changed the original: %+v", in)
	}
}

func TestSameWorkloadComparesGroupKindAndName(t *testing.T) {
	deploy := TargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "weather"}
	tests := []struct {
		name  string
		other TargetRef
		want  bool
	}{
		{"the same reference", deploy, true},
		{"another version of the same group", TargetRef{APIVersion: "apps/v1beta2", Kind: "Deployment", Name: "weather"}, true},
		{"another group", TargetRef{APIVersion: "example.org/v1", Kind: "Deployment", Name: "weather"}, false},
		{"the core group is a group of its own", TargetRef{APIVersion: "v1", Kind: "Deployment", Name: "weather"}, false},
		{"another kind", TargetRef{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "weather"}, false},
		{"another name", TargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "news"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := deploy.SameWorkload(tt.other); got != tt.want {
				t.Errorf("SameWorkload(%+v) = %v, want %v", tt.other, got, tt.want)
			}
			if got := tt.other.SameWorkload(deploy); got != tt.want {
				t.Errorf("SameWorkload is not symmetric for %+v", tt.other)
			}
		})
	}
	if g := (TargetRef{APIVersion: "v1"}).Group(); g != "" {
		t.Errorf("Group of v1 = %q, want the core group", g)
	}
}
