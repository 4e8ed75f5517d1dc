// Package dns publishes the DNS TXT record with which Cloudflare verifies an OAuth
// client's client URI host: on Cloudflare DNS through the API (CloudflarePublisher),
// or as an external-dns DNSEndpoint (ExternalDNSPublisher).
//
// A record is ours only when it carries the owner's marker: on Cloudflare DNS a comment
// naming the OAuthClient and its client, on a DNSEndpoint the controller owner
// reference. Records are found by name, type and content, never by name and type
// alone: the host, often a zone apex, also holds SPF and other verification records,
// and those are never touched.
package dns

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// typeTXT is the record type of the verification record.
const typeTXT = "TXT"

// Owner is the OAuthClient a record is published for.
type Owner struct {
	Namespace, Name string
	// ClientID is the Cloudflare client whose verification text the record holds.
	ClientID string
}

// markerPrefix starts every comment that marks a Cloudflare DNS record as ours.
const markerPrefix = "cloudflare-oauth-operator "

// maxComment is the comment limit of Cloudflare's free zones (paid zones allow 500).
const maxComment = 100

// Marker is the comment that marks the owner's record: the operator, the object's
// namespace/name and the client ID, or a hash of them when that is longer than a free
// zone allows.
func (o Owner) Marker() string {
	full := fmt.Sprintf("%s%s/%s %s", markerPrefix, o.Namespace, o.Name, o.ClientID)
	if len(full) <= maxComment {
		return full
	}
	sum := sha256.Sum256([]byte(o.Namespace + "/" + o.Name + " " + o.ClientID))
	return markerPrefix + "sha256:" + hex.EncodeToString(sum[:])[:32]
}

func (o Owner) String() string { return o.Namespace + "/" + o.Name }

// Want is the TXT record that must exist: Cloudflare's verification text at the client
// URI host.
type Want struct {
	Host, Text string
}

// Change says what a publication changed, for Events.
type Change struct {
	// Created is the ID (or name) of a record created by this call; "" when none.
	Created string
	// Deleted lists the records of ours deleted by this call (an old text).
	Deleted []string
}

// Published is where the record lives.
type Published struct {
	// ZoneID and RecordID locate a Cloudflare DNS record.
	ZoneID, RecordID string
	// Endpoint names a DNSEndpoint.
	Endpoint string
	Change   Change
}

// Problem is what a person must fix for a publication to succeed.
type Problem int

// Problems.
const (
	// ZoneNotFound: no zone the credentials can see holds the host.
	ZoneNotFound Problem = iota + 1
	// Forbidden: Cloudflare refused a DNS call; the message names the permission.
	Forbidden
	// CRDMissing: the DNSEndpoint CRD is not installed.
	CRDMissing
	// Conflict: a DNSEndpoint of our name belongs to someone else.
	Conflict
)

// Error is a publication failure that only a person can fix (a missing permission, a
// zone the credentials cannot see, a missing CRD). Retrying soon does not help.
type Error struct {
	Problem Problem
	Message string
	Cause   error
}

func (e *Error) Error() string { return e.Message }
func (e *Error) Unwrap() error { return e.Cause }

// AsError returns the publication failure in err, if any.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// sameName compares DNS names the way DNS does: case-insensitively, ignoring a final dot.
func sameName(a, b string) bool {
	return strings.EqualFold(strings.TrimSuffix(a, "."), strings.TrimSuffix(b, "."))
}
