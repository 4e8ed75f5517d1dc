package cfemu

import (
	"net/http"
	"sort"
	"time"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

// pendingCommit is a write whose request was answered with a fault
// (FaultRule.CommitAfter) and which lands at due.
type pendingCommit struct {
	due time.Time
	// apply makes the write as of at (its due time), or drops it when it is no
	// longer valid then.
	apply func(at time.Time)
}

// pendingCommits is kept in due order; writes due at the same time land in arrival
// order.
type pendingCommits []pendingCommit

// enqueueLocked schedules apply at due.
func (s *Server) enqueueLocked(due time.Time, apply func(at time.Time)) {
	i := sort.Search(len(s.pending), func(i int) bool { return s.pending[i].due.After(due) })
	s.pending = append(s.pending, pendingCommit{})
	copy(s.pending[i+1:], s.pending[i:])
	s.pending[i] = pendingCommit{due: due, apply: apply}
}

// commitDueLocked lands every pending write whose due time the clock has reached, each
// as of its own due time. It runs at the start of every public API request and every
// Go helper (and so every control call), which makes a fake clock drive it.
func (s *Server) commitDueLocked() {
	now := s.now()
	n := 0
	for n < len(s.pending) && !s.pending[n].due.After(now) {
		n++
	}
	if n == 0 {
		return
	}
	due := append(pendingCommits(nil), s.pending[:n]...)
	s.pending = append(pendingCommits(nil), s.pending[n:]...)
	for _, p := range due {
		p.apply(p.due)
	}
}

// PendingCommits returns how many "commit later" writes (FaultRule.CommitAfter) have
// not landed yet, after landing those that are due.
func (s *Server) PendingCommits() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commitDueLocked()
	return len(s.pending)
}

// commitLaterLocked plans the request's write now (validation, the new client id and
// secret) and schedules it for d later: the client gave up, and the write committed
// later. A request that would fail now schedules nothing; its answer is replaced by the
// fault either way. Reads just run.
func (s *Server) commitLaterLocked(q *request, d time.Duration) response {
	now := s.now()
	due := now.Add(d)
	switch {
	case isZoneTemplate(q.tmpl) && q.method != http.MethodGet:
		return s.dnsLaterLocked(q, due)
	case q.route() == RouteCreateClient:
		return s.createLaterLocked(q, due)
	case q.method == http.MethodGet:
		return s.handleLocked(q)
	}
	rec, errResp := s.lookup(q)
	if rec == nil {
		return errResp
	}
	if refused := s.scheduleWriteLocked(q, rec, now, due); refused != nil {
		return *refused
	}
	return s.success(nil, nil)
}

// createLaterLocked plans a Create now and lands it when due (unless a client of that
// id exists by then).
func (s *Server) createLaterLocked(q *request, due time.Time) response {
	accountID := q.accountID
	rec, errResp := s.planCreate(q)
	if rec == nil {
		return errResp
	}
	s.enqueueLocked(due, func(at time.Time) {
		if s.findLocked(accountID, rec.c.ClientID) == nil {
			s.commitCreate(accountID, rec, at)
		}
	})
	return s.success(nil, nil)
}

// scheduleWriteLocked checks a write to an existing client now and schedules it for
// due; it returns the refusal of a write that would fail now.
func (s *Server) scheduleWriteLocked(q *request, rec *clientRecord, now, due time.Time) *response {
	accountID, clientID := q.accountID, q.clientID
	refuse := func(e cfapi.ErrorDetail) *response { r := s.errorResponse(e); return &r }
	// settled finds the client when the write is due, its verification as of then;
	// nil when it has been deleted meanwhile.
	settled := func(at time.Time) *clientRecord {
		r := s.findLocked(accountID, clientID)
		if r != nil {
			s.refreshVerificationAt(r, at)
		}
		return r
	}
	switch q.route() {
	case RouteUpdateClient:
		var f clientFields
		if e := decodeBody(q.body, &f); e != nil {
			return refuse(*e)
		}
		if _, errs := s.planUpdate(rec, &f, now); len(errs) > 0 {
			r := s.errorResponse(errs...)
			return &r
		}
		// Re-planned when due: it lands only if still valid on the client as it is then.
		s.enqueueLocked(due, func(at time.Time) {
			if r := settled(at); r != nil {
				if next, errs := s.planUpdate(r, &f, at); len(errs) == 0 {
					*r = next
				}
			}
		})
	case RouteDeleteClient:
		s.enqueueLocked(due, func(time.Time) { s.removeClient(accountID, clientID) })
	case RouteRotateSecret:
		if e := rotateRefusal(rec); e != nil {
			return refuse(*e)
		}
		secret := newSecret()
		s.enqueueLocked(due, func(at time.Time) {
			if r := settled(at); r != nil && rotateRefusal(r) == nil {
				applyRotate(r, secret, at)
			}
		})
	case RouteDeleteRotatedSecret:
		if e := deleteRotatedRefusal(rec); e != nil {
			return refuse(*e)
		}
		s.enqueueLocked(due, func(at time.Time) {
			if r := settled(at); r != nil && deleteRotatedRefusal(r) == nil {
				applyDeleteRotated(r, at)
			}
		})
	}
	return nil
}
