package cfapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
)

// clientsPath is /accounts/{account_id}/oauth_clients with the id escaped.
func clientsPath(accountID string) (string, error) {
	if accountID == "" {
		return "", fmt.Errorf("%w: empty account id", ErrInvalidArgument)
	}
	return "/accounts/" + url.PathEscape(accountID) + "/oauth_clients", nil
}

// clientPath is /accounts/{account_id}/oauth_clients/{oauth_client_id}[suffix] with
// both ids escaped.
func clientPath(accountID, clientID, suffix string) (string, error) {
	p, err := clientsPath(accountID)
	if err != nil {
		return "", err
	}
	if clientID == "" {
		return "", fmt.Errorf("%w: empty OAuth client id", ErrInvalidArgument)
	}
	return p + "/" + url.PathEscape(clientID) + suffix, nil
}

func requireClientID(c *OAuthClient) error {
	if c.ClientID == "" {
		return errors.New("result has no client_id")
	}
	return nil
}

// ListOAuthClients returns all of the account's OAuth clients. The API is not
// paginated: one call returns everything.
func (c *Client) ListOAuthClients(ctx context.Context, accountID string) ([]OAuthClient, error) {
	path, err := clientsPath(accountID)
	if err != nil {
		return nil, err
	}
	var out []OAuthClient
	err = c.do(ctx, call{op: "list", method: http.MethodGet, path: path,
		decode: func(raw json.RawMessage) error {
			if len(raw) == 0 || string(raw) == "null" {
				return nil // an account without clients
			}
			return decodeInto(&out, func(list *[]OAuthClient) error {
				for i := range *list {
					if err := requireClientID(&(*list)[i]); err != nil {
						return err
					}
				}
				return nil
			})(raw)
		}})
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = []OAuthClient{}
	}
	return out, nil
}

// GetOAuthClient returns one OAuth client; IsNotFound(err) when it does not exist.
func (c *Client) GetOAuthClient(ctx context.Context, accountID, clientID string) (*OAuthClient, error) {
	path, err := clientPath(accountID, clientID, "")
	if err != nil {
		return nil, err
	}
	var out OAuthClient
	if err := c.do(ctx, call{op: "get", method: http.MethodGet, path: path, decode: decodeInto(&out, requireClientID)}); err != nil {
		return nil, err
	}
	return &out, nil
}

// CreateOAuthClient creates a private OAuth client. The result holds the client secret
// (empty for token_endpoint_auth_method none): Cloudflare never returns it again, so
// store it before doing anything else.
func (c *Client) CreateOAuthClient(ctx context.Context, accountID string, p CreateOAuthClientParams) (*CreatedOAuthClient, error) {
	path, err := clientsPath(accountID)
	if err != nil {
		return nil, err
	}
	var out CreatedOAuthClient
	check := func(cr *CreatedOAuthClient) error { return requireClientID(&cr.OAuthClient) }
	if err := c.do(ctx, call{op: "create", method: http.MethodPost, path: path, body: p.body(), decode: decodeInto(&out, check)}); err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateOAuthClient PATCHes the non-nil fields of p and returns the updated client.
// Setting Visibility to VisibilityPublic promotes the client, permanently.
func (c *Client) UpdateOAuthClient(ctx context.Context, accountID, clientID string, p UpdateOAuthClientParams) (*OAuthClient, error) {
	path, err := clientPath(accountID, clientID, "")
	if err != nil {
		return nil, err
	}
	var out OAuthClient
	if err := c.do(ctx, call{op: "update", method: http.MethodPatch, path: path, body: p.body(), decode: decodeInto(&out, requireClientID)}); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteOAuthClient deletes an OAuth client, revoking its authorizations.
func (c *Client) DeleteOAuthClient(ctx context.Context, accountID, clientID string) error {
	path, err := clientPath(accountID, clientID, "")
	if err != nil {
		return err
	}
	return c.do(ctx, call{op: "delete", method: http.MethodDelete, path: path})
}

// RotateOAuthClientSecret creates a second secret and returns it; the previous one keeps
// working until DeleteRotatedOAuthClientSecret.
func (c *Client) RotateOAuthClientSecret(ctx context.Context, accountID, clientID string) (string, error) {
	path, err := clientPath(accountID, clientID, "/rotate_secret")
	if err != nil {
		return "", err
	}
	var out rotatedSecret
	check := func(r *rotatedSecret) error {
		if r.ClientSecret == "" {
			return errors.New("result has no client_secret")
		}
		return nil
	}
	if err := c.do(ctx, call{op: "rotate_secret", method: http.MethodPost, path: path, decode: decodeInto(&out, check)}); err != nil {
		return "", err
	}
	return out.ClientSecret, nil
}

type rotatedSecret struct {
	ClientSecret string `json:"client_secret"`
}

// DeleteRotatedOAuthClientSecret removes the old secret left by a rotation.
func (c *Client) DeleteRotatedOAuthClientSecret(ctx context.Context, accountID, clientID string) error {
	path, err := clientPath(accountID, clientID, "/rotate_secret")
	if err != nil {
		return err
	}
	return c.do(ctx, call{op: "delete_rotated_secret", method: http.MethodDelete, path: path})
}

// ListOAuthScopes returns the catalogue of scopes clients may request.
func (c *Client) ListOAuthScopes(ctx context.Context) ([]OAuthScope, error) {
	var out []OAuthScope
	err := c.do(ctx, call{op: "list_scopes", method: http.MethodGet, path: "/oauth/scopes",
		decode: func(raw json.RawMessage) error {
			if len(raw) == 0 || string(raw) == "null" {
				return nil
			}
			return decodeInto(&out, nil)(raw)
		}})
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = []OAuthScope{}
	}
	return out, nil
}
