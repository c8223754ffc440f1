package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Group and Version of the types in this package.
const (
	Group   = "agent.kagenti.dev"
	Version = "v1alpha1"
)

// GroupVersion is the API group and version of the types in this package.
var GroupVersion = schema.GroupVersion{Group: Group, Version: Version}

// AddToScheme registers AgentCard and AgentCardList with s.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &AgentCard{}, &AgentCardList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
