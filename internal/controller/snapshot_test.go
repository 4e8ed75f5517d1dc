package controller

import (
	"context"
	"slices"
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
	now = now.Add(time.Second)
	if _, err := s.Ensure(t.Context(), key, now, api); err != nil {
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

// A caller that needs a List sent after notBefore must not settle for one that was
// already in flight before it (an interrupted Create could be missing from it): it
// joins that List, then lists again.
func TestSnapshotsNeverSettleForAListSentBeforeNotBefore(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	api := &listOnly{started: make(chan struct{}), release: make(chan struct{})}
	s := NewSnapshots(time.Minute)
	s.now = clock
	key := accountKey{creds: "k", account: "acct"}

	first := make(chan error, 1)
	go func() { _, err := s.Ensure(context.Background(), key, time.Time{}, api); first <- err }()
	<-api.started // the first List is in flight, sent at 12:00:00

	mu.Lock()
	now = now.Add(10 * time.Second)
	intent := now
	mu.Unlock()
	second := make(chan struct{})
	var at time.Time
	var err error
	go func() { at, err = s.Ensure(context.Background(), key, intent, api); close(second) }()
	close(api.release)
	<-second
	if e := <-first; e != nil {
		t.Fatal(e)
	}
	if err != nil {
		t.Fatal(err)
	}
	if at.Before(intent) {
		t.Errorf("Ensure returned a List sent at %s, before notBefore %s", at, intent)
	}
	if got := api.calls.Load(); got != 2 {
		t.Errorf("List calls = %d, want 2: the in-flight one, then one sent after notBefore", got)
	}
}

// A large account's clients mostly hold the same grant types and scopes: the snapshot
// keeps one copy of each distinct list, and every client still reads its own values.
func TestSnapshotsShareIdenticalLists(t *testing.T) {
	s := NewSnapshots(time.Minute)
	key := accountKey{creds: "c", account: "a"}
	mk := func(id string, scopes ...string) cfapi.OAuthClient {
		return cfapi.OAuthClient{ClientID: id, Visibility: "private", GrantTypes: []string{"authorization_code", "refresh_token"}, Scopes: scopes}
	}
	s.replace(key, time.Now(), []cfapi.OAuthClient{mk("1", "account.read", "offline_access"), mk("2", "account.read", "offline_access"), mk("3", "user-details.read")})
	one, _ := s.Get(key, "1")
	two, _ := s.Get(key, "2")
	three, _ := s.Get(key, "3")
	if &one.Scopes[0] != &two.Scopes[0] || &one.GrantTypes[0] != &three.GrantTypes[0] {
		t.Error("identical lists are held twice")
	}
	if len(three.Scopes) != 1 || three.Scopes[0] != "user-details.read" || two.Scopes[1] != "offline_access" {
		t.Errorf("a client reads another's values: %v, %v", two.Scopes, three.Scopes)
	}
}

// A List that shows a client changed, added or gone since the previous List says so,
// so that the bound objects are looked at at once; the first List and an unchanged one
// say nothing, and neither does a client the operator itself wrote since.
func TestSnapshotsReportWhatAListFoundChanged(t *testing.T) {
	s := NewSnapshots(time.Minute)
	var got [][]string
	s.OnChange = func(_ accountKey, ids []string) {
		slices.Sort(ids)
		got = append(got, ids)
	}
	key := accountKey{creds: "c", account: "a"}
	c := func(id, name string) cfapi.OAuthClient { return cfapi.OAuthClient{ClientID: id, ClientName: name} }
	t0 := time.Now()
	s.replace(key, t0, []cfapi.OAuthClient{c("1", "one"), c("2", "two"), c("3", "three")})
	s.replace(key, t0.Add(time.Second), []cfapi.OAuthClient{c("1", "one"), c("2", "two"), c("3", "three")})
	if len(got) != 0 {
		t.Fatalf("OnChange = %v after the first and an unchanged List, want nothing", got)
	}
	s.Put(key, c("2", "ours")) // our own PATCH, answered before the next List
	s.replace(key, t0.Add(2*time.Second), []cfapi.OAuthClient{c("1", "renamed"), c("2", "ours"), c("4", "four")})
	if want := [][]string{{"1", "3", "4"}}; !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("OnChange = %v, want %v (1 changed, 3 gone, 4 added; 2 is our own write)", got, want)
	}
}
