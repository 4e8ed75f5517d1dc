package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
)

// readiness watches every OAuthClient and keeps, from the watch events, how many are
// Ready (Ready=True, reason Reconciled, for the current generation) and since when.
// Watching costs the apiserver far less than listing thousands of objects every second.
type readiness struct {
	cancel context.CancelFunc

	mu      sync.Mutex
	start   time.Time
	ready   map[string]bool
	reasons map[string]string
	// readyAt is when each object last became Ready.
	readyAt map[string]time.Time
	count   int
	// minReady is the fewest objects Ready since markWindow, to see objects fall out
	// of Ready (rate-limited) in steady state.
	minReady int
	curve    []point // Ready count over time (seconds since start)
	changed  chan struct{}
}

func watchReadiness(ctx context.Context, cl *cluster) (*readiness, error) {
	ctx, cancel := context.WithCancel(ctx)
	c, err := cache.New(cl.env.Config, cache.Options{Scheme: scheme, DefaultTransform: cache.TransformStripManagedFields()})
	if err != nil {
		cancel()
		return nil, err
	}
	r := &readiness{cancel: cancel, start: time.Now(), ready: map[string]bool{}, reasons: map[string]string{},
		readyAt: map[string]time.Time{}, changed: make(chan struct{}, 1)}
	inf, err := c.GetInformer(ctx, &v1alpha1.OAuthClient{})
	if err != nil {
		cancel()
		return nil, err
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { r.observe(o) },
		UpdateFunc: func(_, o any) { r.observe(o) },
	}); err != nil {
		cancel()
		return nil, err
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		cancel()
		return nil, fmt.Errorf("watching OAuthClients: cache did not sync")
	}
	return r, nil
}

func (r *readiness) stop() { r.cancel() }

func (r *readiness) observe(o any) {
	obj, ok := o.(*v1alpha1.OAuthClient)
	if !ok {
		return
	}
	key := client.ObjectKeyFromObject(obj).String()
	cond := meta.FindStatusCondition(obj.Status.Conditions, v1alpha1.ConditionReady)
	isReady := cond != nil && cond.Status == "True" && cond.Reason == v1alpha1.ReasonReconciled && cond.ObservedGeneration == obj.Generation
	r.mu.Lock()
	defer r.mu.Unlock()
	if cond != nil {
		r.reasons[key] = cond.Reason
	}
	was := r.ready[key]
	r.ready[key] = isReady
	if was == isReady {
		return
	}
	if isReady {
		r.count++
		r.readyAt[key] = time.Now()
	} else {
		r.count--
	}
	r.minReady = min(r.minReady, r.count)
	r.curve = append(r.curve, point{X: time.Since(r.start).Seconds(), Y: float64(r.count)})
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// restart makes curve times relative to now (the manager's start).
func (r *readiness) restart() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.start = time.Now()
	r.curve = []point{{X: 0, Y: float64(r.count)}}
}

// waitAll waits until n objects are Ready, and returns how long it took, or false at
// the timeout.
func (r *readiness) waitAll(ctx context.Context, n int, timeout time.Duration) (time.Duration, bool) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		count, start, at := r.count, r.start, time.Duration(0)
		if len(r.curve) > 0 {
			at = time.Duration(r.curve[len(r.curve)-1].X * float64(time.Second))
		}
		r.mu.Unlock()
		if count >= n {
			return at, true
		}
		select {
		case <-ctx.Done():
			return time.Since(start), false
		case <-deadline.C:
			return time.Since(start), false
		case <-r.changed:
		}
	}
}

// markWindow starts counting the fewest Ready objects from now.
func (r *readiness) markWindow() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.minReady = r.count
}

func (r *readiness) snapshot() (count, minReady int, curve []point) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count, r.minReady, append([]point(nil), r.curve...)
}

// notReadyReasons counts the Ready reasons of objects that are not Ready.
func (r *readiness) notReadyReasons() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for key, ok := range r.ready {
		if !ok {
			reason := r.reasons[key]
			if reason == "" {
				reason = "NoStatus"
			}
			out[reason]++
		}
	}
	return out
}

// readyAll reports whether every object of keys (namespace/name) is Ready and, if so,
// when the last of them became Ready.
func (r *readiness) readyAll(keys []string) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var last time.Time
	for _, k := range keys {
		if !r.ready[k] {
			return time.Time{}, false
		}
		if at := r.readyAt[k]; at.After(last) {
			last = at
		}
	}
	return last, true
}

// isReady reports whether the object namespace/name is Ready.
func (r *readiness) isReady(key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ready[key]
}
