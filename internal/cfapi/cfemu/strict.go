package cfemu

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

// maxDuration bounds every duration a setting may hold (FailVerificationAfter,
// FaultRule.CommitAfter): long enough for any test, short enough that no deadline
// overflows.
const maxDuration = 366 * 24 * time.Hour

// Strict is the set of harsher readings of undocumented ([I]) behaviour. The zero value
// is the default, lenient emulator. Each mode is described in docs/emulator.md
// ("Strict modes").
type Strict struct {
	// RotateConflictAs400: rotate while has_rotated_secret is true answers 400 (as a
	// validation error) instead of 409. The error code stays CodeSecretAlreadyRotated.
	RotateConflictAs400 bool `json:"rotate_conflict_as_400,omitempty"`
	// ShuffleOrder: List returns the account's clients in a random order, and every
	// array field of every client in every response (redirect_uris,
	// post_logout_redirect_uris, allowed_cors_origins, grant_types, response_types,
	// scopes, optional_scopes) comes back in a random order. Seeded by Seed,
	// reproducible. A list that can come back in another order always does. Stored
	// order, Go helpers and control endpoints are unaffected.
	ShuffleOrder bool  `json:"shuffle_order,omitempty"`
	Seed         int64 `json:"seed,omitempty"`
	// PromotionBeforePatch: a PATCH carrying visibility:"public" is judged on the
	// client as it was BEFORE the PATCH; fields sent in the same request (a logo_uri, a
	// scope, a client_name) do not count towards the preconditions.
	PromotionBeforePatch bool `json:"promotion_before_patch,omitempty"`
	// FailVerificationAfter: a client_uri verification still pending or in_progress
	// this long after it started turns "failed" on its own (Cloudflare gives up after
	// two days). 0: never. If VerifyAfter is also set, whichever comes first wins (on
	// a tie, failed). At most 366 days.
	FailVerificationAfter time.Duration `json:"-"` // JSON as a Go duration string "fail_verification_after"
	// ZoneScopedList: what GET /zones answers a token whose DNS permissions are limited
	// to some zones (DNSPermissions.ZoneIDs). ZoneListFiltered ("" too): those zones
	// that match; ZoneListEmpty: an empty list; ZoneListForbidden: 403 9109.
	ZoneScopedList string `json:"zone_scoped_list,omitempty"`
	// TokenOwnerMismatch: what a verify endpoint answers a token of another owner (an
	// account-owned token on GET /user/tokens/verify, a user-owned one on GET
	// /accounts/{account_id}/tokens/verify, or one owned by another account there).
	// TokenMismatchInvalid ("" too): 401 1000 "Invalid API Token"; TokenMismatchForbidden:
	// 403 9109; TokenMismatchNotFound: 404 7003.
	TokenOwnerMismatch string `json:"token_owner_mismatch,omitempty"`
	// InactiveTokenRefused: a disabled, expired or not yet valid token (TokenInfo) gets
	// 401 1000 "Invalid API Token" from the verify endpoints instead of a 200 carrying
	// its status, and 403 9109 "Invalid access token" from every other route instead of
	// 401 10000.
	InactiveTokenRefused bool `json:"inactive_token_refused,omitempty"`
}

// Values of Strict.TokenOwnerMismatch.
const (
	TokenMismatchInvalid   = "invalid"
	TokenMismatchForbidden = "forbidden"
	TokenMismatchNotFound  = "not_found"
)

// Values of Strict.ZoneScopedList.
const (
	ZoneListFiltered  = "filtered"
	ZoneListEmpty     = "empty"
	ZoneListForbidden = "forbidden"
)

// Harsh returns every strict mode on (FailVerificationAfter is left to the caller,
// since it needs a duration); ZoneScopedList is ZoneListEmpty, the silent refusal, and
// TokenOwnerMismatch is TokenMismatchForbidden, the answer that is not the default 401.
func Harsh(seed int64) Strict {
	return Strict{RotateConflictAs400: true, ShuffleOrder: true, Seed: seed, PromotionBeforePatch: true, ZoneScopedList: ZoneListEmpty,
		TokenOwnerMismatch: TokenMismatchForbidden, InactiveTokenRefused: true}
}

// Validate reports a FailVerificationAfter that is negative or longer than 366 days,
// and an unknown ZoneScopedList or TokenOwnerMismatch.
func (st Strict) Validate() error {
	if st.FailVerificationAfter < 0 || st.FailVerificationAfter > maxDuration {
		return fmt.Errorf("fail_verification_after %s is outside [0, %s]", st.FailVerificationAfter, maxDuration)
	}
	switch st.ZoneScopedList {
	case "", ZoneListFiltered, ZoneListEmpty, ZoneListForbidden:
	default:
		return fmt.Errorf("zone_scoped_list %q is not %q, %q or %q", st.ZoneScopedList, ZoneListFiltered, ZoneListEmpty, ZoneListForbidden)
	}
	switch st.TokenOwnerMismatch {
	case "", TokenMismatchInvalid, TokenMismatchForbidden, TokenMismatchNotFound:
	default:
		return fmt.Errorf("token_owner_mismatch %q is not %q, %q or %q", st.TokenOwnerMismatch,
			TokenMismatchInvalid, TokenMismatchForbidden, TokenMismatchNotFound)
	}
	return nil
}

type strictJSON struct {
	RotateConflictAs400   bool   `json:"rotate_conflict_as_400,omitempty"`
	ShuffleOrder          bool   `json:"shuffle_order,omitempty"`
	Seed                  int64  `json:"seed,omitempty"`
	PromotionBeforePatch  bool   `json:"promotion_before_patch,omitempty"`
	FailVerificationAfter string `json:"fail_verification_after,omitempty"`
	ZoneScopedList        string `json:"zone_scoped_list,omitempty"`
	TokenOwnerMismatch    string `json:"token_owner_mismatch,omitempty"`
	InactiveTokenRefused  bool   `json:"inactive_token_refused,omitempty"`
}

// MarshalJSON writes FailVerificationAfter as a duration string.
func (st Strict) MarshalJSON() ([]byte, error) {
	w := strictJSON{RotateConflictAs400: st.RotateConflictAs400, ShuffleOrder: st.ShuffleOrder, Seed: st.Seed,
		PromotionBeforePatch: st.PromotionBeforePatch, FailVerificationAfter: durationText(st.FailVerificationAfter),
		ZoneScopedList: st.ZoneScopedList, TokenOwnerMismatch: st.TokenOwnerMismatch, InactiveTokenRefused: st.InactiveTokenRefused}
	return json.Marshal(w)
}

// UnmarshalJSON reads FailVerificationAfter as a duration string such as "48h" and
// refuses unknown fields, so a misspelt mode is an error rather than a lenient run.
func (st *Strict) UnmarshalJSON(b []byte) error {
	var w strictJSON
	if err := decodeKnownFields(b, &w); err != nil {
		return err
	}
	d, err := parseDurationText("fail_verification_after", w.FailVerificationAfter)
	if err != nil {
		return err
	}
	*st = Strict{RotateConflictAs400: w.RotateConflictAs400, ShuffleOrder: w.ShuffleOrder, Seed: w.Seed,
		PromotionBeforePatch: w.PromotionBeforePatch, FailVerificationAfter: d, ZoneScopedList: w.ZoneScopedList,
		TokenOwnerMismatch: w.TokenOwnerMismatch, InactiveTokenRefused: w.InactiveTokenRefused}
	return nil
}

// strictState is the active modes with the random source ShuffleOrder draws from.
type strictState struct {
	st  Strict
	rng *rand.Rand
}

func newStrictState(st Strict) strictState {
	return strictState{st: st, rng: rand.New(rand.NewPCG(uint64(st.Seed), 0x5707))}
}

// SetStrict replaces the strict modes (and restarts ShuffleOrder's random source from
// st.Seed). Writes that were due under the old modes land first. It panics when
// st.Validate fails: a broken setting is a bug in the test. Reset returns to
// Options.Strict.
func (s *Server) SetStrict(st Strict) {
	if err := st.Validate(); err != nil {
		panic("cfemu.SetStrict: " + err.Error())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commitDueLocked()
	s.strict = newStrictState(st)
}

// Strict returns the active strict modes.
func (s *Server) Strict() Strict {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commitDueLocked()
	return s.strict.st
}

// apiView is a client as an API response shows it: view, shuffled under ShuffleOrder.
func (s *Server) apiView(rec *clientRecord) cfapi.OAuthClient {
	c := s.view(rec)
	if s.strict.st.ShuffleOrder {
		for _, list := range [][]string{c.RedirectURIs, c.PostLogoutRedirectURIs, c.AllowedCORSOrigins,
			c.GrantTypes, c.ResponseTypes, c.Scopes, c.OptionalScopes} {
			s.shuffle(list)
		}
	}
	return c
}

// listOrder is the order List answers in: creation order, shuffled under ShuffleOrder.
func (s *Server) listOrder(acct *account) []string {
	ids := slices.Clone(acct.order)
	if s.strict.st.ShuffleOrder {
		s.shuffle(ids)
	}
	return ids
}

// shuffle permutes list in place. When the draw gives back the original order of a
// list that has another one, it is rotated by one, so a caller that depends on order
// fails every time instead of now and then.
func (s *Server) shuffle(list []string) {
	if len(list) < 2 {
		return
	}
	orig := slices.Clone(list)
	s.strict.rng.Shuffle(len(list), func(i, j int) { list[i], list[j] = list[j], list[i] })
	if slices.Equal(list, orig) {
		// Rotating changes any list whose elements are not all equal.
		copy(list, orig[1:])
		list[len(list)-1] = orig[0]
	}
}

// verificationDeadlines says when an unfinished verification turns verified (VerifyAfter,
// in_progress only) and when it turns failed (FailVerificationAfter, pending or
// in_progress); a zero time is never. A host inside an emulated zone follows its DNS
// instead (dnsVerificationDeadlines).
func (s *Server) verificationDeadlines(rec *clientRecord) (verifyAt, failAt time.Time) {
	v := rec.c.ClientURIVerification
	if v == nil {
		return time.Time{}, time.Time{}
	}
	if s.zoneOfHostLocked(uriHost(rec.c.ClientURI)) != nil {
		return s.dnsVerificationDeadlines(rec)
	}
	if v.Status == cfapi.VerificationInProgress && s.opts.VerifyAfter > 0 {
		verifyAt = rec.verifyStarted.Add(s.opts.VerifyAfter)
	}
	if (v.Status == cfapi.VerificationInProgress || v.Status == cfapi.VerificationPending) && s.strict.st.FailVerificationAfter > 0 {
		failAt = rec.verifyStarted.Add(s.strict.st.FailVerificationAfter)
	}
	return verifyAt, failAt
}
