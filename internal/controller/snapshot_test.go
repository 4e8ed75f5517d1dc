package controller

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

// listOnly is a CloudflareAPI whose List blocks until released and counts its calls.
type listOnly struct {
	CloudflareAPI
	calls   atomic.Int32
	started chan struct{}
	release chan struct{}
	clients []cfapi.OAuthClient
}

func (l *listOnly) ListOAuthClients(ctx context.Context, _ string) ([]cfapi.OAuthClient, error) {
	if l.calls.Add(1) == 1 && l.started != nil {
		close(l.started)
	}
	if l.release != nil {
		<-l.release
	}
	return l.clients, nil
}

func TestSnapshotsShareOneInFlightList(t *testing.T) {
	api := &listOnly{started: make(chan struct{}), release: make(chan struct{}), clients: []cfapi.OAuthClient{{ClientID: "a"}}}
	s := NewSnapshots(time.Minute)
	key := accountKey{creds: "k", account: "acct"}

	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Ensure(t.Context(), key, time.Time{}, api); err != nil {
				t.Error(err)
			}
		}()
	}
	// Callers are either waiting on the one List or will find its fresh result.
	<-api.started
	close(api.release)
	wg.Wait()
	if got := api.calls.Load(); got != 1 {
		t.Fatalf("List calls = %d, want 1 shared by 50 callers", got)
	}
	if _, ok := s.Get(key, "a"); !ok {
		t.Fatal("client a missing from the snapshot")
	}
}

func TestSnapshotsReuseUntilMaxAge(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	api := &listOnly{}
	s := NewSnapshots(time.Minute)
	s.now = func() time.Time { return now }
	key := accountKey{creds: "k", account: "acct"}

	for range 10 {
		if _, err := s.Ensure(t.Context(), key, time.Time{}, api); err != nil {
			t.Fatal(err)
		}
	}
	if got := api.calls.Load(); got != 1 {
		t.Fatalf("List calls = %d, want 1 within max age", got)
	}
	now = now.Add(61 * time.Second)
	if _, err := s.Ensure(t.Context(), key, time.Time{}, api); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Ensure(t.Context(), key, now.Add(time.Second), api); err != nil {
		t.Fatal(err)
	}
	if got := api.calls.Load(); got != 3 {
		t.Fatalf("List calls = %d, want 3 (expired, then forced by notBefore)", got)
	}
}

func TestSnapshotsKeepOwnWritesAcrossAnOlderList(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	s := NewSnapshots(time.Minute)
	s.now = func() time.Time { return now }
	key := accountKey{creds: "k", account: "acct"}

	// A List starts, then we create "new" and delete "old", then the List returns the
	// state from before our writes.
	listStarted := now
	now = now.Add(time.Second)
	s.Put(key, cfapi.OAuthClient{ClientID: "new"})
	s.Remove(key, "old")
	s.replace(key, listStarted, []cfapi.OAuthClient{{ClientID: "old"}, {ClientID: "other"}})

	if _, ok := s.Get(key, "new"); !ok {
		t.Error("a client we created vanished because an older List did not contain it")
	}
	if _, ok := s.Get(key, "old"); ok {
		t.Error("a client we deleted came back from an older List")
	}
	if _, ok := s.Get(key, "other"); !ok {
		t.Error("a listed client is missing")
	}

	// A List that started after our writes is the truth.
	s.replace(key, now.Add(time.Second), []cfapi.OAuthClient{{ClientID: "other"}})
	if _, ok := s.Get(key, "new"); ok {
		t.Error("a newer List must win over our older writes")
	}
}

func TestSnapshotsBlockPerCredentials(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	s := NewSnapshots(time.Minute)
	s.now = func() time.Time { return now }
	s.Block("a", now.Add(30*time.Second))
	s.Block("a", now.Add(10*time.Second)) // an earlier deadline never shortens a block
	if got := s.BlockedFor("a"); got != 30*time.Second {
		t.Errorf("BlockedFor(a) = %s, want 30s", got)
	}
	if got := s.BlockedFor("b"); got != 0 {
		t.Errorf("BlockedFor(b) = %s, want 0: blocks are per credentials", got)
	}
	now = now.Add(31 * time.Second)
	if got := s.BlockedFor("a"); got != 0 {
		t.Errorf("BlockedFor(a) after expiry = %s, want 0", got)
	}
}
