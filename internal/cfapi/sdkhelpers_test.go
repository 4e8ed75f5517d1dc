package cfapi_test

// Helpers for using the official Go SDK (cloudflare-go, generated from Cloudflare's
// OpenAPI description) as a second oracle; the tests are in sdkoracle_test.go and
// sdkfields_test.go. The SDK is a test-only dependency (TestSDKIsTestOnly).
//
// Only the SDK's iam, option and pagination packages are imported. Its root package
// (which holds cloudflare.NewClient and cloudflare.F) compiles all ~130 Cloudflare
// services, about two minutes of cold build for two helpers, and reads CLOUDFLARE_*
// variables from the environment; iam.NewIAMService with explicit options is the same
// client without either. iam.Error is cloudflare.Error: both alias the SDK's
// apierror.Error.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudflare/cloudflare-go/v7/iam"
	"github.com/cloudflare/cloudflare-go/v7/option"
	"github.com/cloudflare/cloudflare-go/v7/packages/pagination"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi/cfemu"
)

const (
	sdkAccount = "5d41402abc4b2a76b9719d911017c592"
	sdkToken   = "sdk-oracle-tok-4Kq9Vw"
)

// sdkKnownGaps lists the JSON fields of ours that cloudflare-go v7.9.0 lacks, with why.
// It must hold exactly the differences there are: a field missing from it fails
// TestSDKFieldNames and TestSDKOracleOperations, and an entry the SDK has caught up
// with fails them too (delete the entry when upgrading the SDK).
var sdkKnownGaps = map[string]string{
	// optional_scopes was added to the API after the product launched: Cloudflare's
	// newest API reference, the Terraform provider and Pulumi v6.18 have it, while
	// cloudflare-go v7.9.0's iam/oauthclient.go (generated from an older OpenAPI
	// description) has no OptionalScopes in any params or response type. cfapi and the
	// emulator support it; SDK users send it with option.WithJSONSet and read it from
	// JSON.ExtraFields, which is what TestSDKOracleOperations does.
	"optional_scopes": "newer than cloudflare-go v7.9.0",
}

// sdkCatalogue replaces the emulator's built-in scopes so that every field of a scope
// is exercised and the test does not depend on the built-in list.
var sdkCatalogue = []cfapi.OAuthScope{
	{ID: "account.read", Name: "Account Read", Category: "Account", Scopes: []string{"com.cloudflare.api.account.read"}},
	{ID: "workers-scripts.write", Name: "Workers Scripts Write", Category: "Workers", Scopes: []string{"com.cloudflare.edge.worker.script.read", "com.cloudflare.edge.worker.script.write"}},
	{ID: "zone.read", Name: "Zone Read", Category: "Zone", Scopes: []string{"com.cloudflare.api.account.zone.read"}},
}

// sdkExchange is one HTTP exchange as the SDK's transport saw it.
type sdkExchange struct {
	method, path, query string // path is escaped and below cfemu.BasePath
	reqBody             []byte
	status              int
	contentType         string
	respBody            []byte
}

// sdkWire records what the SDK really sends and receives, to hold the emulator's
// request log against it.
type sdkWire struct {
	next http.RoundTripper
	mu   sync.Mutex
	log  []sdkExchange
}

func (w *sdkWire) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		reqBody = b
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	res, err := w.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	respBody, err := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if err != nil {
		return nil, err
	}
	res.Body = io.NopCloser(bytes.NewReader(respBody))
	w.mu.Lock()
	defer w.mu.Unlock()
	w.log = append(w.log, sdkExchange{
		method:      req.Method,
		path:        strings.TrimPrefix(req.URL.EscapedPath(), cfemu.BasePath),
		query:       req.URL.RawQuery,
		reqBody:     reqBody,
		status:      res.StatusCode,
		contentType: res.Header.Get("Content-Type"),
		respBody:    respBody,
	})
	return res, nil
}

func (w *sdkWire) len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.log)
}

func (w *sdkWire) since(n int) []sdkExchange {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.log[n:])
}

// sdkEnv is the SDK's IAM service wired to an in-process emulator on a fake clock.
type sdkEnv struct {
	emu  *cfemu.Server
	wire *sdkWire
	iam  *iam.IAMService
}

func newSDKEnv(t *testing.T) *sdkEnv {
	t.Helper()
	// Nanoseconds, as the emulator writes timestamps at full precision.
	clock := cfemu.NewFakeClock(time.Date(2026, 9, 1, 8, 0, 0, 123456789, time.UTC))
	emu := cfemu.New(cfemu.Options{Tokens: map[string][]string{sdkToken: nil}, Scopes: sdkCatalogue, Now: clock.Now})
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	wire := &sdkWire{next: srv.Client().Transport}
	svc := iam.NewIAMService(
		option.WithBaseURL(srv.URL+cfemu.BasePath+"/"),
		option.WithAPIToken(sdkToken),
		option.WithHTTPClient(&http.Client{Transport: wire, Timeout: 10 * time.Second}),
		option.WithMaxRetries(0),
	)
	return &sdkEnv{emu: emu, wire: wire, iam: svc}
}

// exchange returns the single exchange made since the wire held n and the emulator's
// log held m entries, and checks that the emulator recorded the request the SDK sent.
func (e *sdkEnv) exchange(t *testing.T, n, m int) (sdkExchange, cfemu.RecordedRequest) {
	t.Helper()
	sent, recorded := e.wire.since(n), e.emu.Requests()[m:]
	if len(sent) != 1 || len(recorded) != 1 {
		t.Fatalf("SDK made %d request(s), emulator recorded %d; want 1 and 1", len(sent), len(recorded))
	}
	ex, rec := sent[0], recorded[0]
	got := fmt.Sprintf("%s %s -> %d %s", rec.Method, rec.Path, rec.Status, canonicalJSON(t, rec.Body))
	want := fmt.Sprintf("%s %s -> %d %s", ex.method, ex.path, ex.status, canonicalJSON(t, ex.reqBody))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("emulator's record differs from what the SDK sent and got (-sdk +emulator):\n%s", diff)
	}
	if ex.query != "" {
		t.Errorf("SDK sent query %q; these endpoints define no query parameters", ex.query)
	}
	return ex, rec
}

// canonicalJSON re-encodes a JSON body with sorted keys so that two encodings of the
// same document compare equal; an empty body stays empty.
func canonicalJSON(t *testing.T, b []byte) string {
	t.Helper()
	if len(b) == 0 {
		return ""
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("body %q is not JSON: %v", b, err)
	}
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// bodyKeys returns the sorted top-level keys of a JSON object body (nil for none).
func bodyKeys(t *testing.T, b []byte) []string {
	t.Helper()
	if len(b) == 0 {
		return nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", b, err)
	}
	return slices.Sorted(maps.Keys(m))
}

// sdkF sets an SDK request field as cloudflare.F does (see the file comment for why
// the root package is not imported).
func sdkF[F, V any](field *F, v V) {
	f := reflect.ValueOf(field).Elem()
	f.FieldByName("Value").Set(reflect.ValueOf(v))
	f.FieldByName("Present").SetBool(true)
}

// sdkDecodeProblems walks a value decoded by the SDK and reports every key the SDK's
// type does not know (apijson keeps it in JSON.ExtraFields) and every field whose JSON
// did not fit the Go type (apijson marks it invalid rather than failing), except the
// unknown keys listed in sdkKnownGaps, which it returns separately.
func sdkDecodeProblems(v any) (problems []string, gaps map[string]json.RawMessage) {
	gaps = map[string]json.RawMessage{}
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		switch v.Kind() {
		case reflect.Pointer, reflect.Interface:
			if !v.IsNil() {
				walk(v.Elem(), path)
			}
		case reflect.Slice, reflect.Array:
			for i := range v.Len() {
				walk(v.Index(i), fmt.Sprintf("%s[%d]", path, i))
			}
		case reflect.Struct:
			meta := v.FieldByName("JSON")
			if !meta.IsValid() || meta.Kind() != reflect.Struct {
				return // not an SDK model (time.Time, …)
			}
			if extra := meta.FieldByName("ExtraFields"); extra.IsValid() {
				for _, k := range extra.MapKeys() {
					key := k.String()
					if _, ok := sdkKnownGaps[key]; ok {
						gaps[path+"."+key] = json.RawMessage(extra.MapIndex(k).MethodByName("Raw").Call(nil)[0].String())
						continue
					}
					problems = append(problems, fmt.Sprintf("%s.%s: not in the SDK's %s", path, key, v.Type()))
				}
			}
			for f := range fieldsOf(v.Type()) {
				name := jsonName(f)
				if name == "" {
					continue
				}
				fv := v.FieldByIndex(f.Index)
				if m := meta.FieldByName(f.Name); m.IsValid() && m.MethodByName("IsInvalid").IsValid() &&
					m.MethodByName("IsInvalid").Call(nil)[0].Bool() {
					problems = append(problems, fmt.Sprintf("%s.%s: %s does not decode into %s",
						path, name, m.MethodByName("Raw").Call(nil)[0].String(), f.Type))
				}
				walk(fv, path+"."+name)
			}
		}
	}
	walk(reflect.ValueOf(v), "$")
	slices.Sort(problems)
	return problems, gaps
}

// fieldsOf yields the exported, non-embedded-struct fields of t, promoted ones included.
func fieldsOf(t reflect.Type) func(func(reflect.StructField) bool) {
	return func(yield func(reflect.StructField) bool) {
		for _, f := range reflect.VisibleFields(t) {
			if !f.IsExported() || f.Anonymous {
				continue
			}
			if !yield(f) {
				return
			}
		}
	}
}

// jsonName is the JSON key of a struct field, "" when it has none or is skipped.
func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "-" {
		return ""
	}
	return name
}

// sdkAs copies an SDK response into one of cfapi's types, field by JSON name, so that
// what the SDK decoded can be compared with what the emulator holds. Fields of ours
// the SDK lacks stay zero (TestSDKFieldNames reports them).
func sdkAs[T any](t *testing.T, src any) T {
	t.Helper()
	var dst T
	copyByJSONName(t, reflect.ValueOf(&dst).Elem(), reflect.Indirect(reflect.ValueOf(src)), "$")
	return dst
}

func copyByJSONName(t *testing.T, dst, src reflect.Value, path string) {
	t.Helper()
	from := map[string]reflect.Value{}
	for f := range fieldsOf(src.Type()) {
		if name := jsonName(f); name != "" {
			from[name] = src.FieldByIndex(f.Index)
		}
	}
	for f := range fieldsOf(dst.Type()) {
		if s, ok := from[jsonName(f)]; ok && jsonName(f) != "" {
			copyValue(t, dst.FieldByIndex(f.Index), s, path+"."+jsonName(f))
		}
	}
}

// copyValue converts one SDK value (enum strings, time.Time, nested models) into
// the shape cfapi uses (plain strings, *time.Time, pointers to structs).
func copyValue(t *testing.T, d, s reflect.Value, path string) {
	t.Helper()
	isStrings := func(v reflect.Value) bool {
		return v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String
	}
	switch {
	case d.Type() == reflect.TypeFor[*time.Time]():
		if tm := s.Interface().(time.Time); !tm.IsZero() {
			d.Set(reflect.ValueOf(&tm))
		}
	case d.Kind() == reflect.Pointer && d.Type().Elem().Kind() == reflect.Struct:
		if !s.IsZero() { // an absent object decodes to the zero struct
			v := reflect.New(d.Type().Elem())
			copyByJSONName(t, v.Elem(), s, path)
			d.Set(v)
		}
	case d.Kind() == reflect.String && s.Kind() == reflect.String:
		d.SetString(s.String())
	case d.Kind() == reflect.Bool && s.Kind() == reflect.Bool:
		d.SetBool(s.Bool())
	case isStrings(d) && isStrings(s):
		if !s.IsNil() {
			out := reflect.MakeSlice(d.Type(), s.Len(), s.Len())
			for i := range s.Len() {
				out.Index(i).SetString(s.Index(i).String())
			}
			d.Set(out)
		}
	default:
		t.Fatalf("%s: no conversion from the SDK's %s to our %s", path, s.Type(), d.Type())
	}
}

// ignoreGaps ignores, in comparisons of T, the fields listed in sdkKnownGaps: the SDK
// cannot decode them, so they stay zero in sdkAs's copy.
func ignoreGaps[T any]() cmp.Option {
	var names []string
	for f := range fieldsOf(reflect.TypeFor[T]()) {
		if _, ok := sdkKnownGaps[jsonName(f)]; ok {
			names = append(names, f.Name)
		}
	}
	var zero T
	return cmpopts.IgnoreFields(zero, names...)
}

// pageResult returns the Result of a pagination.SinglePage, whose own JSON metadata
// models only result (success, errors, messages and result_info land in its
// ExtraFields by design), and any other value unchanged.
func pageResult(res any) any {
	v := reflect.ValueOf(res)
	if v.Kind() == reflect.Pointer && v.Elem().Kind() == reflect.Struct &&
		v.Elem().Type().PkgPath() == reflect.TypeFor[pagination.SinglePage[any]]().PkgPath() {
		return v.Elem().FieldByName("Result").Interface()
	}
	return res
}
