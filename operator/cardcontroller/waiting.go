package cardcontroller

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"
)

// waitingCards are the cards, by namespace, whose last look for their
// Service found none: a Service created or changed in that namespace wakes
// them.
//
// A card is added before the reconciler reads the Services from the
// cache, not when its status is written. The informer updates its cache
// before it calls the handlers, so a Service event either finds the card
// here or comes after a read that saw the Service. An index over the
// cached status, as this replaced, missed the Service that arrived
// between the read and the card's status reaching the cache, and the card
// then waited for its 30 s requeue.
type waitingCards struct {
	mu   sync.Mutex
	byNS map[string]map[string]struct{}
}

// add records that the card is about to look for its Service.
func (w *waitingCards) add(card types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.byNS == nil {
		w.byNS = map[string]map[string]struct{}{}
	}
	names := w.byNS[card.Namespace]
	if names == nil {
		names = map[string]struct{}{}
		w.byNS[card.Namespace] = names
	}
	names[card.Name] = struct{}{}
}

// remove forgets the card: it found its Service, or it is gone.
func (w *waitingCards) remove(card types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	names := w.byNS[card.Namespace]
	delete(names, card.Name)
	if len(names) == 0 {
		delete(w.byNS, card.Namespace)
	}
}

// in returns the cards of namespace that wait for a Service.
func (w *waitingCards) in(namespace string) []types.NamespacedName {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]types.NamespacedName, 0, len(w.byNS[namespace]))
	for name := range w.byNS[namespace] {
		out = append(out, types.NamespacedName{Namespace: namespace, Name: name})
	}
	return out
}
