package cfemu

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

// DefaultAccountID is the account of a zone created without one (Cloudflare's own
// example account id).
const DefaultAccountID = "023e105f4ecef8ad9ca31a8372d0c353"

// Defaults of Options.DNSPropagation and Options.DNSVerificationTimeout.
const (
	DefaultDNSPropagation         = 5 * time.Second
	DefaultDNSVerificationTimeout = 48 * time.Hour
)

// Zone plans (ZoneSpec.Plan). They decide the comment limit (100 characters on free,
// 500 on paid zones) and the lowest TTL (30 on enterprise, 60 otherwise).
const (
	PlanFree       = "free"
	PlanPro        = "pro"
	PlanBusiness   = "business"
	PlanEnterprise = "enterprise"
)

const (
	tmplZones      = "/zones"
	tmplZone       = "/zones/{zone_id}"
	tmplDNSRecords = "/zones/{zone_id}/dns_records"
	tmplDNSRecord  = "/zones/{zone_id}/dns_records/{dns_record_id}"
)

// Errors of the zone and DNS Go helpers (404 from the control endpoints).
var (
	ErrZoneNotFound   = errors.New("cfemu: zone not found")
	ErrRecordNotFound = errors.New("cfemu: DNS record not found")
)

// ZoneSpec describes a zone to create (Options.Zones, AddZoneSpec, POST
// /_emulator/zones).
type ZoneSpec struct {
	// Name is the zone's domain, e.g. "example.com" (stored lowercase).
	Name string `json:"name"`
	// AccountID owns the zone; "" means DefaultAccountID. Tokens restricted to other
	// accounts (Options.Tokens) cannot use it.
	AccountID string `json:"account_id,omitempty"`
	// ID is the zone id, 32 lowercase hex; "" draws one.
	ID string `json:"id,omitempty"`
	// Plan is PlanFree (""), PlanPro, PlanBusiness or PlanEnterprise.
	Plan string `json:"plan,omitempty"`
	// CommentLimit is the longest record comment in characters; 0 means the plan's
	// (100 on free zones, 500 on paid ones, as external-dns documents).
	CommentLimit int `json:"comment_limit,omitempty"`
}

// Validate reports what New, AddZoneSpec and POST /_emulator/zones would refuse in z
// on its own: a name that is not a domain name, an id or account id that is not 32
// lowercase hex, an unknown plan, a negative comment limit. A name or id already in use
// is found only when the zone is added.
func (z ZoneSpec) Validate() error {
	_, err := normaliseZone(z)
	return err
}

// DNSPermissions are a token's zone and DNS permissions (Options.DNS, SetTokenDNS).
type DNSPermissions struct {
	// ZoneRead ("Zone → Zone → Read"): GET /zones and GET /zones/{zone_id}.
	ZoneRead bool `json:"zone_read,omitempty"`
	// DNSRead ("Zone → DNS → Read"): list and get records.
	DNSRead bool `json:"dns_read,omitempty"`
	// DNSWrite ("Zone → DNS → Edit"): everything DNSRead allows, and create, PATCH,
	// PUT and delete records.
	DNSWrite bool `json:"dns_write,omitempty"`
	// ZoneIDs limits the token to these zones; empty means every zone of the accounts
	// the token may use. A limited token's GET /zones follows Strict.ZoneScopedList.
	ZoneIDs []string `json:"zone_ids,omitempty"`
}

// DNSEditor is "Zone → Zone → Read" and "Zone → DNS → Edit", limited to zoneIDs when
// any are given: the token cert-manager and external-dns document.
func DNSEditor(zoneIDs ...string) DNSPermissions {
	return DNSPermissions{ZoneRead: true, DNSRead: true, DNSWrite: true, ZoneIDs: zoneIDs}
}

func (p DNSPermissions) allowsZone(id string) bool {
	return len(p.ZoneIDs) == 0 || slices.Contains(p.ZoneIDs, id)
}

func (p DNSPermissions) validate() error {
	for _, id := range p.ZoneIDs {
		if !accountIDPattern.MatchString(id) {
			return fmt.Errorf("zone id %q is not 32 lowercase hex characters", id)
		}
	}
	return nil
}

// zone is a stored zone and its records in creation order.
type zone struct {
	spec    ZoneSpec // normalised
	created time.Time
	records map[string]*record
	order   []string
}

// dnsState is the zones, their records and the tokens' DNS permissions.
type dnsState struct {
	perms  map[string]DNSPermissions
	zones  map[string]*zone
	order  []string
	byName map[string]string // zone name -> id
	// initial are Options.Zones with their ids, recreated by Reset.
	initial []ZoneSpec
}

// initDNS checks the DNS options and draws the ids of Options.Zones, so that Reset
// recreates them as they were.
func (s *Server) initDNS() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"DNSPropagation", s.opts.DNSPropagation}, {"DNSVerificationTimeout", s.opts.DNSVerificationTimeout}} {
		if d.v > maxDuration {
			return fmt.Errorf("%s %s is longer than %s", d.name, d.v, maxDuration)
		}
	}
	for _, p := range s.opts.DNS {
		if err := p.validate(); err != nil {
			return err
		}
	}
	names, ids := map[string]bool{}, map[string]bool{}
	for _, z := range s.opts.Zones {
		n, err := normaliseZone(z)
		if err != nil {
			return err
		}
		if names[n.Name] || ids[n.ID] {
			return fmt.Errorf("zone %s (%s) is given twice", n.Name, n.ID)
		}
		names[n.Name], ids[n.ID] = true, true
		s.dns.initial = append(s.dns.initial, n)
	}
	return nil
}

// resetDNSLocked drops every zone and record, recreates Options.Zones and returns the
// tokens' permissions to Options.DNS.
func (s *Server) resetDNSLocked() {
	s.dns.perms = make(map[string]DNSPermissions, len(s.opts.DNS))
	for t, p := range s.opts.DNS {
		p.ZoneIDs = slices.Clone(p.ZoneIDs)
		s.dns.perms[t] = p
	}
	s.dns.zones, s.dns.order, s.dns.byName = map[string]*zone{}, nil, map[string]string{}
	for _, z := range s.dns.initial {
		_ = s.addZoneLocked(z, s.now()) // checked by initDNS
	}
}

var hostLabel = regexp.MustCompile(`^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$`)

// normaliseZone lowercases the name, fills the defaults and checks every field.
func normaliseZone(z ZoneSpec) (ZoneSpec, error) {
	z.Name = strings.TrimSuffix(strings.ToLower(z.Name), ".")
	labels := strings.Split(z.Name, ".")
	if len(z.Name) > 253 || len(labels) < 2 || slices.ContainsFunc(labels, func(l string) bool { return !hostLabel.MatchString(l) }) {
		return ZoneSpec{}, fmt.Errorf("zone name %q is not a domain name such as example.com", z.Name)
	}
	if z.AccountID == "" {
		z.AccountID = DefaultAccountID
	}
	if z.ID == "" {
		z.ID = randomHex(16)
	}
	if !accountIDPattern.MatchString(z.AccountID) || !accountIDPattern.MatchString(z.ID) {
		return ZoneSpec{}, fmt.Errorf("zone %s: id and account id must be 32 lowercase hex characters", z.Name)
	}
	if z.Plan == "" {
		z.Plan = PlanFree
	}
	if !slices.Contains([]string{PlanFree, PlanPro, PlanBusiness, PlanEnterprise}, z.Plan) {
		return ZoneSpec{}, fmt.Errorf("zone %s: unknown plan %q", z.Name, z.Plan)
	}
	switch {
	case z.CommentLimit < 0:
		return ZoneSpec{}, fmt.Errorf("zone %s: negative comment limit", z.Name)
	case z.CommentLimit == 0 && z.Plan == PlanFree:
		z.CommentLimit = 100
	case z.CommentLimit == 0:
		z.CommentLimit = 500
	}
	return z, nil
}

// addZoneLocked stores a normalised zone as of at. Verifications are settled first
// and then follow the zone's DNS: a host the zone holds stops using VerifyAfter.
func (s *Server) addZoneLocked(z ZoneSpec, at time.Time) error {
	if s.dns.zones[z.ID] != nil {
		return fmt.Errorf("cfemu: zone id %s already exists", z.ID)
	}
	if _, dup := s.dns.byName[z.Name]; dup {
		return fmt.Errorf("cfemu: zone %s already exists", z.Name)
	}
	s.settleVerificationsLocked(at)
	s.dns.zones[z.ID] = &zone{spec: z, created: at.UTC(), records: map[string]*record{}}
	s.dns.order = append(s.dns.order, z.ID)
	s.dns.byName[z.Name] = z.ID
	s.trackAllDNSLocked(at)
	return nil
}

// isZoneTemplate reports the zone and DNS record routes, which are gated by DNS
// permissions rather than by account.
func isZoneTemplate(tmpl string) bool {
	switch tmpl {
	case tmplZones, tmplZone, tmplDNSRecords, tmplDNSRecord:
		return true
	}
	return false
}

// matchZonePath maps an escaped path below BasePath to a zone template and ids. The
// record sub-resources Cloudflare has but the emulator does not (batch, export,
// import, scan) are unknown routes.
func matchZonePath(p string) (tmpl, zoneID, recordID string) {
	raw := strings.Split(strings.TrimPrefix(p, "/"), "/")
	segs := make([]string, len(raw))
	for i, r := range raw {
		v, err := url.PathUnescape(r)
		if err != nil || v == "" {
			return "", "", ""
		}
		segs[i] = v
	}
	switch {
	case segs[0] != "zones":
		return "", "", ""
	case len(segs) == 1:
		return tmplZones, "", ""
	case len(segs) == 2:
		return tmplZone, segs[1], ""
	case segs[2] != "dns_records":
		return "", "", ""
	case len(segs) == 3:
		return tmplDNSRecords, segs[1], ""
	case len(segs) == 4 && !slices.Contains([]string{"batch", "export", "import", "scan"}, segs[3]):
		return tmplDNSRecord, segs[1], segs[3]
	}
	return "", "", ""
}

// permsOf is what cred may do with zones: everything for the Global API key, else the
// token's DNS permissions (none when it has no entry).
func (s *Server) permsOf(cred *credential) DNSPermissions {
	if cred.globalKey {
		return DNSEditor()
	}
	return s.dns.perms[cred.token]
}

// gateZoneLocked checks a zone or DNS request after authentication and rate limiting:
// the zone id's format (400 7003), the permission the route needs (403 9109), the zone
// (404), the token's zones and accounts (403 9109); then it runs handle.
func (s *Server) gateZoneLocked(q *request, cred *credential, handle func(*request) response) response {
	if q.zoneID != "" && !accountIDPattern.MatchString(q.zoneID) {
		resp := s.errorResponse(apiError(CodeNoRoute,
			"Could not route to "+BasePath+q.path+", perhaps your object identifier is invalid?", ""))
		resp.status = http.StatusBadRequest
		return resp
	}
	perms := s.permsOf(cred)
	if need, ok := missingPermission(q, perms); !ok {
		return s.errorResponse(apiError(CodeForbidden, "Unauthorized to access requested resource: the token lacks "+need, ""))
	}
	if q.tmpl == tmplZones && len(perms.ZoneIDs) > 0 && s.strict.st.ZoneScopedList == ZoneListForbidden {
		return s.errorResponse(apiError(CodeForbidden,
			"Unauthorized to access requested resource: listing zones needs Zone Read on all zones", ""))
	}
	if q.zoneID != "" {
		z := s.dns.zones[q.zoneID]
		if z == nil {
			return s.errorResponse(apiError(CodeZoneNotFound, "Zone not found", ""))
		}
		if !cred.allows(z.spec.AccountID) || !perms.allowsZone(z.spec.ID) {
			return s.errorResponse(apiError(CodeForbidden, "Unauthorized to access requested resource: the token may not use this zone", ""))
		}
	}
	return handle(q)
}

// missingPermission names the permission q needs when perms lacks it.
func missingPermission(q *request, perms DNSPermissions) (string, bool) {
	switch {
	case q.tmpl == tmplZones || q.tmpl == tmplZone:
		return "Zone Read", perms.ZoneRead
	case q.method == http.MethodGet:
		return "DNS Read", perms.DNSRead || perms.DNSWrite
	}
	return "DNS Write", perms.DNSWrite
}

// handleZoneLocked runs a zone or DNS request that passed gateZoneLocked.
func (s *Server) handleZoneLocked(q *request) response {
	switch q.route() {
	case RouteListZones:
		cred, _ := s.authenticate(q.header)
		return s.listZones(q, cred)
	case RouteGetZone:
		return s.success(s.zoneView(s.dns.zones[q.zoneID]), nil)
	case RouteListDNSRecords:
		return s.listDNSRecords(q)
	case RouteGetDNSRecord:
		z := s.dns.zones[q.zoneID]
		if r := z.records[q.recordID]; r != nil {
			return s.success(r.view(), nil)
		}
		return s.errorResponse(apiError(CodeRecordNotFound, "DNS record not found", ""))
	}
	w, e := parseDNSWrite(q)
	if e != nil {
		return s.errorResponse(*e)
	}
	return s.runDNSWrite(w, s.now(), false)
}

// zoneView is a zone as the API shows it: the fields of cloudflare-go's zones.Zone
// that mean something here.
type zoneView struct {
	ID                  string      `json:"id"`
	Name                string      `json:"name"`
	Status              string      `json:"status"`
	Paused              bool        `json:"paused"`
	Type                string      `json:"type"`
	DevelopmentMode     int         `json:"development_mode"`
	NameServers         []string    `json:"name_servers"`
	OriginalNameServers []string    `json:"original_name_servers"`
	OriginalRegistrar   *string     `json:"original_registrar"`
	OriginalDnshost     *string     `json:"original_dnshost"`
	CreatedOn           time.Time   `json:"created_on"`
	ModifiedOn          time.Time   `json:"modified_on"`
	ActivatedOn         time.Time   `json:"activated_on"`
	Account             zoneAccount `json:"account"`
	Owner               zoneOwner   `json:"owner"`
	Plan                zonePlan    `json:"plan"`
}

type zoneAccount struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type zoneOwner struct {
	ID   *string `json:"id"`
	Name *string `json:"name"`
	Type string  `json:"type"`
}

type zonePlan struct {
	ID           string  `json:"id"`
	Name         string  `json:"name"`
	Price        float64 `json:"price"`
	Currency     string  `json:"currency"`
	Frequency    string  `json:"frequency"`
	IsSubscribed bool    `json:"is_subscribed"`
	CanSubscribe bool    `json:"can_subscribe"`
	LegacyID     string  `json:"legacy_id"`
}

func (s *Server) zoneView(z *zone) zoneView {
	planName := strings.ToUpper(z.spec.Plan[:1]) + z.spec.Plan[1:] + " Website"
	return zoneView{
		ID: z.spec.ID, Name: z.spec.Name, Status: "active", Type: "full",
		NameServers: []string{"ada.ns.cloudflare.com", "bob.ns.cloudflare.com"},
		CreatedOn:   z.created, ModifiedOn: z.created, ActivatedOn: z.created,
		Account: zoneAccount{ID: z.spec.AccountID, Name: "Emulated account " + z.spec.AccountID[:8]},
		Owner:   zoneOwner{Type: "organization"},
		Plan: zonePlan{ID: z.spec.Plan, Name: planName, Currency: "USD", Frequency: "monthly",
			IsSubscribed: true, LegacyID: z.spec.Plan},
	}
}

// listZones answers GET /zones: the zones cred may see that match the filters, a page
// of them. A token limited to some zones sees those (Strict.ZoneScopedList filtered),
// or nothing (empty).
func (s *Server) listZones(q *request, cred *credential) response {
	query, err := url.ParseQuery(q.query)
	if err != nil {
		return s.errorResponse(apiError(CodeInvalidQuery, "the query string is malformed", ""))
	}
	if e := unsupportedParams(query, "order", "direction"); e != nil {
		return s.errorResponse(*e)
	}
	matches, e := zoneConditions(query)
	if e != nil {
		return s.errorResponse(*e)
	}
	page, perPage, e := pageParams(query, 20, 5, 50)
	if e != nil {
		return s.errorResponse(*e)
	}
	perms := s.permsOf(cred)
	out := []zoneView{}
	scopedEmpty := len(perms.ZoneIDs) > 0 && s.strict.st.ZoneScopedList == ZoneListEmpty
	for _, id := range s.dns.order {
		z := s.dns.zones[id]
		if !scopedEmpty && cred.allows(z.spec.AccountID) && perms.allowsZone(id) && matches(z) {
			out = append(out, s.zoneView(z))
		}
	}
	items, info := pageOf(out, page, perPage)
	return s.success(items, info)
}

// zoneConditions builds the GET /zones filters: name and account.name with
// Cloudflare's operators ("contains:exam"), account.id, status, type, and match.
func zoneConditions(query url.Values) (func(*zone) bool, *cfapi.ErrorDetail) {
	var conds []func(*zone) bool
	for _, v := range query["name"] {
		f := nameOperator(v)
		conds = append(conds, func(z *zone) bool { return f(z.spec.Name) })
	}
	for _, v := range query["account.name"] {
		f := nameOperator(v)
		conds = append(conds, func(z *zone) bool { return f("Emulated account " + z.spec.AccountID[:8]) })
	}
	for _, v := range query["account.id"] {
		conds = append(conds, func(z *zone) bool { return z.spec.AccountID == v })
	}
	for _, v := range query["status"] {
		conds = append(conds, func(*zone) bool { return v == "active" })
	}
	for _, v := range query["type"] {
		conds = append(conds, func(*zone) bool { return slices.Contains(strings.Split(v, ","), "full") })
	}
	return combine(conds, query.Get("match"))
}

// nameOperator reads Cloudflare's "operator:value" zone-name filter; a value without
// a known operator is compared with "equal". Only the _case_sensitive operators care
// about case.
func nameOperator(v string) func(string) bool {
	fold := strings.ToLower
	ops := map[string]func(have, want string) bool{
		"equal":                      func(h, w string) bool { return fold(h) == fold(w) },
		"not_equal":                  func(h, w string) bool { return fold(h) != fold(w) },
		"starts_with":                func(h, w string) bool { return strings.HasPrefix(fold(h), fold(w)) },
		"ends_with":                  func(h, w string) bool { return strings.HasSuffix(fold(h), fold(w)) },
		"contains":                   func(h, w string) bool { return strings.Contains(fold(h), fold(w)) },
		"starts_with_case_sensitive": strings.HasPrefix,
		"ends_with_case_sensitive":   strings.HasSuffix,
		"contains_case_sensitive":    strings.Contains,
	}
	op, want, ok := strings.Cut(v, ":")
	if f := ops[op]; ok && f != nil {
		return func(have string) bool { return f(have, want) }
	}
	return func(have string) bool { return fold(have) == fold(v) }
}

// combine joins conditions by match: "all" (the default) or "any".
func combine[T any](conds []func(T) bool, match string) (func(T) bool, *cfapi.ErrorDetail) {
	switch match {
	case "", "all":
		return func(v T) bool {
			for _, c := range conds {
				if !c(v) {
					return false
				}
			}
			return true
		}, nil
	case "any":
		return func(v T) bool {
			return len(conds) == 0 || slices.ContainsFunc(conds, func(c func(T) bool) bool { return c(v) })
		}, nil
	}
	e := apiError(CodeInvalidQuery, fmt.Sprintf("match %q is not \"any\" or \"all\"", match), "")
	return nil, &e
}

// unsupportedParams refuses list parameters the emulator does not emulate, rather than
// answer as if they had not been sent.
func unsupportedParams(query url.Values, names ...string) *cfapi.ErrorDetail {
	for k := range query {
		base, _, _ := strings.Cut(k, ".")
		if slices.Contains(names, base) {
			e := apiError(CodeUnsupportedFilter, fmt.Sprintf("the emulator does not support the %q parameter", k), "")
			return &e
		}
	}
	return nil
}

// pageParams reads page (default 1) and per_page (default def, clamped to
// [lo, hi]); a value that is not a positive integer is refused.
func pageParams(query url.Values, def, lo, hi int) (page, perPage int, e *cfapi.ErrorDetail) {
	read := func(name string, fallback int) (int, bool) {
		v := query.Get(name)
		if v == "" {
			return fallback, true
		}
		n, err := strconv.Atoi(v)
		return n, err == nil && n >= 1
	}
	page, okPage := read("page", 1)
	perPage, okPer := read("per_page", def)
	if !okPage || !okPer {
		d := apiError(CodeInvalidQuery, "page and per_page must be positive integers", "")
		return 0, 0, &d
	}
	return page, min(max(perPage, lo), hi), nil
}

// pageOf cuts page page of perPage items out of all, with its result_info.
func pageOf[T any](all []T, page, perPage int) ([]T, *resultInfo) {
	total := len(all)
	pages := (total + perPage - 1) / perPage
	start := total
	if page-1 <= total/perPage { // (page-1)*perPage cannot overflow
		start = min((page-1)*perPage, total)
	}
	items := all[start:min(start+perPage, total)]
	return items, &resultInfo{Count: len(items), Page: page, PerPage: perPage, TotalCount: total, TotalPages: &pages}
}
