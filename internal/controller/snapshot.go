package controller

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

// Snapshots holds, for each (credentials, account) pair, the account's remote clients as
// last listed. Cloudflare allows 1,200 requests per 5 minutes per user, so the operator
// never GETs a client: one List serves every object of the account until the snapshot
// is MaxAge old. Concurrent reconciles share one in-flight List, and the operator's own
// writes update the snapshot in place, so a write never forces a re-list.
type Snapshots struct {
	// MaxAge is how long a List result is reused (--remote-sync-period).
	MaxAge time.Duration
	now    func() time.Time

	group singleflight.Group

	// OnChange, when set, is told the clients of an account that a List found changed,
	// added or gone since the previous List (out-of-band drift), so that the objects
	// bound to them are looked at now rather than at their next periodic pass. It must
	// not block.
	OnChange func(key accountKey, clientIDs []string)

	mu       sync.Mutex
	accounts map[accountKey]*accountState
}

type accountKey struct{ creds, account string }

func (k accountKey) String() string { return k.creds + "/" + k.account }

type accountState struct {
	clients   map[string]cfapi.OAuthClient
	fetchedAt time.Time
	// listedAt is when the last successful List was sent; unlike fetchedAt, Invalidate
	// keeps it, so a snapshot that cannot be refreshed shows its age (metrics).
	listedAt time.Time
	// local records our own writes, so that a List which started before a write and
	// finished after it cannot undo that write in the snapshot (a lost Create would
	// otherwise look like an out-of-band delete and be re-created).
	local map[string]localWrite
}

type localWrite struct {
	at      time.Time
	deleted bool
}

// NewSnapshots returns an empty snapshot store.
func NewSnapshots(maxAge time.Duration) *Snapshots {
	return &Snapshots{MaxAge: maxAge, now: time.Now, accounts: map[accountKey]*accountState{}}
}

// sentAtLister lists and says when the request was sent (after any pacing wait).
type sentAtLister interface {
	ListOAuthClientsSentAt(ctx context.Context, accountID string) ([]cfapi.OAuthClient, time.Time, error)
}

// Ensure makes sure the snapshot of key was listed less than MaxAge ago and by a List
// sent at or after notBefore, listing (once, shared by concurrent callers) when it is
// not. A caller never settles for a List that was already in flight before notBefore:
// it joins it, then lists again. It returns when the snapshot's List was sent.
func (s *Snapshots) Ensure(ctx context.Context, key accountKey, notBefore time.Time, api CloudflareAPI) (time.Time, error) {
	for range 3 {
		if at, ok := s.usable(key, notBefore); ok {
			return at, nil
		}
		at, err := s.list(ctx, key, api, notBefore)
		if err != nil {
			return time.Time{}, err
		}
		if !at.Before(notBefore) {
			return at, nil
		}
	}
	return time.Time{}, fmt.Errorf("no List of account %s was sent after %s", key.account, notBefore.UTC().Format(time.RFC3339Nano))
}

// usable reports whether the snapshot of key was listed less than MaxAge ago by a
// List sent at or after notBefore, and when.
func (s *Snapshots) usable(key accountKey, notBefore time.Time) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.accounts[key]
	if st == nil || st.fetchedAt.IsZero() || s.now().Sub(st.fetchedAt) >= s.MaxAge || st.fetchedAt.Before(notBefore) {
		return time.Time{}, false
	}
	return st.fetchedAt, true
}

// list runs one List for key, or joins the one in flight. A List that completed since
// the caller looked, and that the caller can use, is used as is.
func (s *Snapshots) list(ctx context.Context, key accountKey, api CloudflareAPI, notBefore time.Time) (time.Time, error) {
	ch := s.group.DoChan(key.String(), func() (any, error) {
		if at, ok := s.usable(key, notBefore); ok {
			return at, nil
		}
		// Detach from the first caller's cancellation: the List is shared.
		listCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		var clients []cfapi.OAuthClient
		var sent time.Time
		var err error
		if l, ok := api.(sentAtLister); ok {
			clients, sent, err = l.ListOAuthClientsSentAt(listCtx, key.account)
		} else {
			sent = s.now()
			clients, err = api.ListOAuthClients(listCtx, key.account)
		}
		if err != nil {
			return nil, classify(opList, err)
		}
		return s.replace(key, sent, clients), nil
	})
	select {
	case <-ctx.Done():
		return time.Time{}, ctx.Err()
	case res := <-ch:
		if res.Err != nil {
			return time.Time{}, res.Err
		}
		return res.Val.(time.Time), nil
	}
}

// replace installs a List result that started at started, keeping our own writes made
// since then.
func (s *Snapshots) replace(key accountKey, started time.Time, clients []cfapi.OAuthClient) time.Time {
	changed := s.install(key, started, clients)
	if len(changed) > 0 && s.OnChange != nil {
		s.OnChange(key, changed)
	}
	return started
}

// install is replace under the lock; it returns the clients the List found changed
// since the previous one (none on the first List: every object is being looked at).
func (s *Snapshots) install(key accountKey, started time.Time, clients []cfapi.OAuthClient) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := &accountState{clients: make(map[string]cfapi.OAuthClient, len(clients)), fetchedAt: started, listedAt: started, local: map[string]localWrite{}}
	share := listSharer{}
	for _, c := range clients {
		share.lists(&c)
		next.clients[c.ClientID] = c
	}
	prev := s.accounts[key]
	if prev != nil {
		for id, w := range prev.local {
			if !w.at.After(started) {
				continue
			}
			next.local[id] = w
			if w.deleted {
				delete(next.clients, id)
			} else if c, ok := prev.clients[id]; ok {
				next.clients[id] = c
			}
		}
	}
	s.accounts[key] = next
	if prev == nil || prev.clients == nil {
		return nil
	}
	var changed []string
	for id, c := range next.clients {
		if was, ok := prev.clients[id]; !ok || !reflect.DeepEqual(was, c) {
			changed = append(changed, id)
		}
	}
	for id := range prev.clients {
		if _, ok := next.clients[id]; !ok {
			changed = append(changed, id)
		}
	}
	return changed
}

// Get returns the remote client id of the account, as last seen.
func (s *Snapshots) Get(key accountKey, id string) (cfapi.OAuthClient, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.accounts[key]
	if st == nil {
		return cfapi.OAuthClient{}, false
	}
	c, ok := st.clients[id]
	return c, ok
}

// Find returns the clients of the account that match.
func (s *Snapshots) Find(key accountKey, match func(*cfapi.OAuthClient) bool) []cfapi.OAuthClient {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.accounts[key]
	if st == nil {
		return nil
	}
	var out []cfapi.OAuthClient
	for _, c := range st.clients {
		if match(&c) {
			out = append(out, c)
		}
	}
	return out
}

// Put records a client as returned by one of our own Create or Update calls.
func (s *Snapshots) Put(key accountKey, c cfapi.OAuthClient) {
	s.write(key, c.ClientID, func(st *accountState) { st.clients[c.ClientID] = c }, false)
}

// Update changes the recorded client in place, if it is known.
func (s *Snapshots) Update(key accountKey, id string, fn func(*cfapi.OAuthClient)) {
	s.write(key, id, func(st *accountState) {
		if c, ok := st.clients[id]; ok {
			fn(&c)
			st.clients[id] = c
		}
	}, false)
}

// Remove records that we deleted a client.
func (s *Snapshots) Remove(key accountKey, id string) {
	s.write(key, id, func(st *accountState) { delete(st.clients, id) }, true)
}

func (s *Snapshots) write(key accountKey, id string, fn func(*accountState), deleted bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.accounts[key]
	if st == nil {
		// Never listed: leave fetchedAt zero so the next Ensure lists.
		st = &accountState{clients: map[string]cfapi.OAuthClient{}, local: map[string]localWrite{}}
		s.accounts[key] = st
	}
	fn(st)
	st.local[id] = localWrite{at: s.now(), deleted: deleted}
}

// Invalidate makes the next Ensure of key list again: a write was refused because of
// remote state the snapshot did not show.
func (s *Snapshots) Invalidate(key accountKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.accounts[key]; st != nil {
		st.fetchedAt = time.Time{}
	}
}

// Forget drops every snapshot listed with these credentials (no object uses them).
func (s *Snapshots) Forget(creds string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.accounts {
		if k.creds == creds {
			delete(s.accounts, k)
		}
	}
}

// listSharer makes the clients of one List share the lists they hold identically
// (grant and response types, scopes, empty lists), which in a large account are almost
// all the same: a snapshot of thousands of clients then holds each distinct list once.
// Nothing writes to a snapshot's slices (readers clone before sorting or editing).
type listSharer map[string][]string

func (s listSharer) lists(c *cfapi.OAuthClient) {
	for _, l := range []*[]string{&c.GrantTypes, &c.ResponseTypes, &c.Scopes, &c.OptionalScopes,
		&c.PostLogoutRedirectURIs, &c.AllowedCORSOrigins} {
		*l = s.share(*l)
	}
	c.Visibility, c.TokenEndpointAuthMethod = s.str(c.Visibility), s.str(c.TokenEndpointAuthMethod)
}

func (s listSharer) share(l []string) []string {
	if l == nil {
		return nil
	}
	key := "l\x00" + strings.Join(l, "\x00")
	if held, ok := s[key]; ok {
		return held
	}
	s[key] = l
	return l
}

func (s listSharer) str(v string) string {
	if held, ok := s["s\x00"+v]; ok {
		return held[0]
	}
	s["s\x00"+v] = []string{v}
	return v
}
