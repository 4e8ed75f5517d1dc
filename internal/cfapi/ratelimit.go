package cfapi

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// RateLimit is what Cloudflare's rate-limit headers said about the global API limit:
// `Ratelimit: "default";r=50;t=30` (Remaining, Reset) and
// `Ratelimit-Policy: "default";q=1200;w=300` (Quota, Window). A field is 0 when its
// header or parameter was absent.
type RateLimit struct {
	Remaining int
	Reset     time.Duration
	Quota     int
	Window    time.Duration
}

// parseRateLimit reads the first item of each header. It returns nil when neither
// header carries a usable parameter.
func parseRateLimit(h http.Header) *RateLimit {
	var rl RateLimit
	found := false
	for k, v := range firstItemParams(h.Get("Ratelimit")) {
		switch k {
		case "r":
			rl.Remaining, found = v, true
		case "t":
			rl.Reset, found = time.Duration(v)*time.Second, true
		}
	}
	for k, v := range firstItemParams(h.Get("Ratelimit-Policy")) {
		switch k {
		case "q":
			rl.Quota, found = v, true
		case "w":
			rl.Window, found = time.Duration(v)*time.Second, true
		}
	}
	if !found {
		return nil
	}
	return &rl
}

// maxHeaderNumber bounds header numbers so that seconds never overflow a Duration.
const maxHeaderNumber = 1 << 31

// firstItemParams parses the integer parameters of the first item of a structured
// field list such as `"default";r=50;t=30, "burst";r=5;t=1`. Malformed or negative
// values are skipped.
func firstItemParams(v string) map[string]int {
	item, _, _ := strings.Cut(v, ",")
	parts := strings.Split(item, ";")
	out := map[string]int{}
	for _, p := range parts[1:] {
		k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(val))
		if err != nil || n < 0 || n > maxHeaderNumber {
			continue
		}
		out[strings.ToLower(strings.TrimSpace(k))] = n
	}
	return out
}

// parseRetryAfter reads Retry-After as delay-seconds or an HTTP date; 0 if absent or
// unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		if n <= 0 || math.IsNaN(n) || n > math.MaxInt64/float64(time.Second) {
			return 0
		}
		return time.Duration(math.Ceil(n)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
