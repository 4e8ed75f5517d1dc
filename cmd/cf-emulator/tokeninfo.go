package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi/cfemu"
)

// tokenInfoSyntax is the --token-info value, for messages (which never show the value).
const tokenInfoSyntax = "TOKEN=STATUS[,expires=RFC3339][,not-before=RFC3339][,account=ACCOUNT_ID][,id=ID]"

// tokenInfoFlag collects --token-info values: token -> what the verify endpoints
// report about it (cfemu.TokenInfo).
type tokenInfoFlag map[string]cfemu.TokenInfo

func (f *tokenInfoFlag) String() string { return "" } // never print tokens

// Set reads TOKEN=STATUS followed by comma-separated key=value attributes. Its errors
// name the attribute at fault, never the token.
func (f *tokenInfoFlag) Set(v string) error {
	token, spec, ok := strings.Cut(v, "=")
	if !ok || !validToken(token) {
		return fmt.Errorf("want %s; the token non-empty, without whitespace or control characters", tokenInfoSyntax)
	}
	parts := strings.Split(spec, ",")
	info := cfemu.TokenInfo{Status: parts[0]}
	if !slices.Contains([]string{cfapi.TokenActive, cfapi.TokenDisabled, cfapi.TokenExpired}, info.Status) {
		return fmt.Errorf("want %s with STATUS %s, %s or %s", tokenInfoSyntax, cfapi.TokenActive, cfapi.TokenDisabled, cfapi.TokenExpired)
	}
	seen := map[string]bool{}
	for _, kv := range parts[1:] {
		key, val, _ := strings.Cut(kv, "=")
		if seen[key] {
			return fmt.Errorf("%s is given twice", key)
		}
		seen[key] = true
		var err error
		switch key {
		case "expires":
			info.ExpiresOn, err = parseInstant(key, val)
		case "not-before":
			info.NotBefore, err = parseInstant(key, val)
		case "account":
			info.AccountID = val
		case "id":
			info.ID = val
		default:
			return fmt.Errorf("unknown attribute %q (want expires, not-before, account or id)", key)
		}
		if err != nil {
			return err
		}
	}
	if err := info.Validate(); err != nil {
		return err
	}
	if info.ID == token {
		return errors.New("the id must not be the token")
	}
	if *f == nil {
		*f = tokenInfoFlag{}
	}
	(*f)[token] = info
	return nil
}

func parseInstant(key, v string) (*time.Time, error) {
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return nil, fmt.Errorf("%s: %q is not an RFC 3339 time such as 2027-01-01T00:00:00Z", key, v)
	}
	return &t, nil
}

// checkTokenInfo refuses an account-owned token that --token restricts to other
// accounts (the emulator would refuse it at start), without naming the token.
func (o *options) checkTokenInfo() error {
	for token, info := range o.tokenInfo {
		if list := o.tokens[token]; info.AccountID != "" && len(list) > 0 && !slices.Contains(list, info.AccountID) {
			return fmt.Errorf("--token-info: a token owned by account %s is restricted by --token to other accounts", info.AccountID)
		}
	}
	return nil
}
