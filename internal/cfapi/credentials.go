package cfapi

import (
	"errors"
	"fmt"
)

// Credentials authenticate requests to the Cloudflare API: either an API token
// (preferred) or the legacy pair of account e-mail and Global API key. Exactly one mode
// may be set. The values are secrets: String and GoString redact them, and no error
// produced by this package contains them.
type Credentials struct {
	APIToken string
	Email    string
	APIKey   string
}

// ErrInvalidCredentials is wrapped by every error Credentials.Validate returns.
var ErrInvalidCredentials = errors.New("cfapi: invalid credentials")

// Validate checks that exactly one credential mode is set and that every value can be
// sent in an HTTP header as is. It runs before any value reaches net/http, which would
// otherwise quote a rejected header value in its own error. The error names the field,
// never its value.
func (c Credentials) Validate() error {
	token := c.APIToken != ""
	legacy := c.Email != "" || c.APIKey != ""
	switch {
	case token && legacy:
		return fmt.Errorf("%w: set either an API token or an e-mail and API key, not both", ErrInvalidCredentials)
	case token:
		return checkHeaderValue("API token", c.APIToken)
	case c.Email == "" && c.APIKey == "":
		return fmt.Errorf("%w: no API token or e-mail and API key given", ErrInvalidCredentials)
	case c.Email == "":
		return fmt.Errorf("%w: an API key needs an e-mail", ErrInvalidCredentials)
	case c.APIKey == "":
		return fmt.Errorf("%w: an e-mail needs an API key", ErrInvalidCredentials)
	}
	if err := checkHeaderValue("e-mail", c.Email); err != nil {
		return err
	}
	return checkHeaderValue("API key", c.APIKey)
}

// checkHeaderValue accepts only printable ASCII without spaces: Cloudflare tokens, keys
// and e-mail addresses never contain anything else, and a stray newline or space from a
// Secret would otherwise turn into a confusing 401 or a header-injection attempt.
func checkHeaderValue(field, v string) error {
	for i := 0; i < len(v); i++ {
		if b := v[i]; b <= ' ' || b >= 0x7f {
			return fmt.Errorf("%w: the %s contains whitespace, a control or a non-ASCII character (at byte %d)",
				ErrInvalidCredentials, field, i+1)
		}
	}
	return nil
}

// String redacts the secrets so that %v and %+v never print them.
func (c Credentials) String() string {
	switch {
	case c.APIToken != "":
		return "cfapi.Credentials{APIToken: <redacted>}"
	case c.Email != "" || c.APIKey != "":
		return "cfapi.Credentials{Email: <redacted>, APIKey: <redacted>}"
	}
	return "cfapi.Credentials{}"
}

// GoString redacts the secrets so that %#v never prints them.
func (c Credentials) GoString() string { return c.String() }
