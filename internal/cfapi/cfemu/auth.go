package cfemu

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// credential is an authenticated caller. user names the Cloudflare user it belongs
// to: the rate limit is per user, so it keys the limiter. It holds the token, so it is
// never printed.
type credential struct {
	user     string
	accounts []string
	// readOnly credentials hold only "OAuth Client Read".
	readOnly bool
	// oauth is false for a token listed only in Options.DNS: it holds no OAuth Client
	// permission.
	oauth bool
	// token keys the token's DNS permissions; "" for the legacy pair, which has them
	// all (globalKey).
	token     string
	globalKey bool
}

func (c *credential) allows(accountID string) bool {
	if len(c.accounts) == 0 {
		return true
	}
	for _, a := range c.accounts {
		if a == accountID {
			return true
		}
	}
	return false
}

// mayWrite reports whether the credential may make a request with this method: a
// read-only token may only GET (List, Get, GET /oauth/scopes).
func (c *credential) mayWrite(method string) bool {
	return !c.readOnly || method == http.MethodGet
}

// authenticate accepts "Authorization: Bearer <token>" or, when no Authorization
// header is sent, X-Auth-Email + X-Auth-Key. A token is accepted when it is in
// Options.Tokens or Options.ReadOnlyTokens, has DNS permissions (Options.DNS,
// SetTokenDNS) or token info (Options.TokenInfo, SetTokenInfo); whether it is active
// is for the caller to check (refuseInactiveLocked). An account-owned token may use its
// own account only.
func (s *Server) authenticate(h http.Header) (*credential, bool) {
	if auth := h.Get("Authorization"); auth != "" {
		scheme, token, ok := strings.Cut(auth, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
			return nil, false
		}
		accounts, known := s.opts.Tokens[token]
		readOnly := s.readOnly[token]
		_, dns := s.dns.perms[token]
		info, hasInfo := s.tokens.info[token]
		if !known && !readOnly && !dns && !hasInfo {
			return nil, false
		}
		if info.AccountID != "" {
			accounts = []string{info.AccountID} // within Options.Tokens' list (checkTokenInfo)
		}
		return &credential{user: s.userOf(token), accounts: accounts, readOnly: readOnly, oauth: known || readOnly, token: token}, true
	}
	email, key := h.Get("X-Auth-Email"), h.Get("X-Auth-Key")
	if s.opts.Email != "" && s.opts.APIKey != "" && email == s.opts.Email && key == s.opts.APIKey {
		// The Global API key belongs to the user named by the e-mail.
		return &credential{user: "user:" + email, oauth: true, globalKey: true}, true
	}
	return nil, false
}

// userOf names the user owning token: the one Options.Users says, else a user of its
// own. The prefixes keep a user's name and a token's value from colliding.
func (s *Server) userOf(token string) string {
	if u := s.opts.Users[token]; u != "" {
		return "user:" + u
	}
	return "token:" + token
}

// rateLimitedLocked counts a request against cred's user and, when it is refused,
// returns the 429 to answer.
func (s *Server) rateLimitedLocked(cred *credential) (response, bool) {
	retry, limited := s.limitLocked(cred)
	if !limited {
		return response{}, false
	}
	s.stats.RateLimited++
	resp := s.errorResponse(apiError(CodeRateLimited, "Rate limited: too many requests, please wait and throttle your request speed", ""))
	resp.header.Set("Retry-After", strconv.FormatInt(ceilSeconds(retry), 10))
	return s.withRateHeaders(resp, cred), true
}

// window is one user's sliding rate-limit window.
type window struct {
	hits         []time.Time
	blockedUntil time.Time
}

// limitLocked counts a request against cred's user and reports whether it is refused
// and for how long the user stays blocked.
func (s *Server) limitLocked(cred *credential) (time.Duration, bool) {
	if s.opts.RateLimit <= 0 {
		return 0, false
	}
	now := s.now()
	w := s.windowLocked(cred, now)
	if now.Before(w.blockedUntil) {
		return w.blockedUntil.Sub(now), true
	}
	if len(w.hits) >= s.opts.RateLimit {
		// Cloudflare blocks the caller for the next full window once it is exceeded.
		w.blockedUntil = now.Add(s.opts.RateWindow)
		return s.opts.RateWindow, true
	}
	w.hits = append(w.hits, now)
	return 0, false
}

func (s *Server) windowLocked(cred *credential, now time.Time) *window {
	w := s.limits[cred.user]
	if w == nil {
		w = &window{}
		s.limits[cred.user] = w
	}
	cut := 0
	for cut < len(w.hits) && !w.hits[cut].After(now.Add(-s.opts.RateWindow)) {
		cut++
	}
	w.hits = w.hits[cut:]
	return w
}

// Nominal policy advertised when the emulator does not enforce a limit: Cloudflare's
// global 1,200 requests per 5 minutes.
const (
	nominalQuota  = 1200
	nominalWindow = 5 * time.Minute
)

// withRateHeaders adds Ratelimit and Ratelimit-Policy for cred's user (nil: an
// anonymous caller, who sees the full quota).
func (s *Server) withRateHeaders(resp response, cred *credential) response {
	if resp.header == nil {
		resp.header = http.Header{}
	}
	quota, win := s.opts.RateLimit, s.opts.RateWindow
	if quota <= 0 {
		quota, win = nominalQuota, nominalWindow
	}
	remaining, reset := quota, time.Duration(0)
	if cred != nil && s.opts.RateLimit > 0 {
		now := s.now()
		w := s.windowLocked(cred, now)
		remaining = max(quota-len(w.hits), 0)
		if len(w.hits) > 0 {
			reset = w.hits[0].Add(win).Sub(now)
		}
		if now.Before(w.blockedUntil) {
			remaining, reset = 0, w.blockedUntil.Sub(now)
		}
	}
	resp.header.Set("Ratelimit", fmt.Sprintf(`"default";r=%d;t=%d`, remaining, ceilSeconds(reset)))
	resp.header.Set("Ratelimit-Policy", fmt.Sprintf(`"default";q=%d;w=%d`, quota, ceilSeconds(win)))
	return resp
}

func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(math.Ceil(d.Seconds()))
}
