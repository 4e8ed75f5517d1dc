package cfemu

import "github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"

const (
	catAccount   = "Account"
	catUser      = "User"
	catZone      = "Zone"
	catWorkers   = "Workers"
	catStorage   = "Storage"
	catZeroTrust = "Zero Trust"
	catPages     = "Pages"
	catAI        = "AI"
	catAnalytics = "Analytics"

	resAccount = "com.cloudflare.api.account"
	resUser    = "com.cloudflare.api.user"
	resZone    = "com.cloudflare.api.account.zone"
)

// defaultScopes is a realistic slice of Cloudflare's OAuth scope catalogue (the live
// one has a few hundred entries). Ids follow the "<resource>.<read|write|edit>" shape
// of GET /oauth/scopes; Scopes lists the underlying API resource scopes.
func defaultScopes() []cfapi.OAuthScope {
	type entry struct{ id, name, category, resource string }
	entries := []entry{
		{"account.read", "Account Settings Read", catAccount, resAccount},
		{"account.write", "Account Settings Write", catAccount, resAccount},
		{"account-analytics.read", "Account Analytics Read", catAccount, resAccount},
		{"audit-logs.read", "Access: Audit Logs Read", catAccount, resAccount},
		{"billing.read", "Billing Read", catAccount, resAccount},
		{"memberships.read", "Memberships Read", catUser, resUser},
		{"user-details.read", "User Details Read", catUser, resUser},
		{"user-details.write", "User Details Write", catUser, resUser},
		{"api-tokens.read", "API Tokens Read", catUser, resUser},
		{"zone.read", "Zone Read", catZone, resZone},
		{"zone.edit", "Zone Edit", catZone, resZone},
		{"zone-settings.read", "Zone Settings Read", catZone, resZone},
		{"zone-settings.edit", "Zone Settings Edit", catZone, resZone},
		{"dns-records.read", "DNS Read", catZone, resZone},
		{"dns-records.edit", "DNS Edit", catZone, resZone},
		{"ssl-certs.read", "SSL and Certificates Read", catZone, resZone},
		{"ssl-certs.write", "SSL and Certificates Write", catZone, resZone},
		{"cache-purge.write", "Cache Purge", catZone, resZone},
		{"firewall.read", "Firewall Services Read", catZone, resZone},
		{"firewall.write", "Firewall Services Write", catZone, resZone},
		{"workers-scripts.read", "Workers Scripts Read", catWorkers, resAccount},
		{"workers-scripts.write", "Workers Scripts Write", catWorkers, resAccount},
		{"workers-kv.read", "Workers KV Storage Read", catWorkers, resAccount},
		{"workers-kv.write", "Workers KV Storage Write", catWorkers, resAccount},
		{"workers-routes.read", "Workers Routes Read", catWorkers, resZone},
		{"workers-routes.write", "Workers Routes Write", catWorkers, resZone},
		{"workers-platform.read", "Workers Platform Read", catWorkers, resAccount},
		{"workers-tail.read", "Workers Tail Read", catWorkers, resAccount},
		{"d1.read", "D1 Read", catStorage, resAccount},
		{"d1.write", "D1 Write", catStorage, resAccount},
		{"r2.read", "Workers R2 Storage Read", catStorage, resAccount},
		{"r2.write", "Workers R2 Storage Write", catStorage, resAccount},
		{"pages.read", "Pages Read", catPages, resAccount},
		{"pages.write", "Pages Write", catPages, resAccount},
		{"teams.read", "Zero Trust Read", catZeroTrust, resAccount},
		{"teams.write", "Zero Trust Write", catZeroTrust, resAccount},
		{"access.read", "Access: Apps and Policies Read", catZeroTrust, resAccount},
		{"access.write", "Access: Apps and Policies Write", catZeroTrust, resAccount},
		{"ai.read", "Workers AI Read", catAI, resAccount},
		{"ai.write", "Workers AI Write", catAI, resAccount},
		{"logs.read", "Logs Read", catAnalytics, resAccount},
		{"analytics.read", "Analytics Read", catAnalytics, resZone},
	}
	out := make([]cfapi.OAuthScope, len(entries))
	for i, e := range entries {
		out[i] = cfapi.OAuthScope{ID: e.id, Name: e.name, Category: e.category, Scopes: []string{e.resource}}
	}
	return out
}
