package cfemu

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strings"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

// control is one /_emulator request: plain JSON in and out, no credentials.
type control struct {
	w http.ResponseWriter
	r *http.Request
}

func (c control) reply(status int, v any) {
	c.w.Header().Set("Content-Type", "application/json")
	c.w.WriteHeader(status)
	_ = json.NewEncoder(c.w).Encode(v)
}

func (c control) fail(status int, format string, args ...any) {
	c.reply(status, map[string]string{"error": fmt.Sprintf(format, args...)})
}

// failFor answers 404 for ErrNotFound and 400 for anything else.
func (c control) failFor(err error) {
	status := http.StatusBadRequest
	if isNotFound(err) {
		status = http.StatusNotFound
	}
	c.fail(status, "%v", err)
}

// decode reads a JSON body into dst, answering 400 itself when it cannot.
func (c control) decode(dst any) bool {
	dec := json.NewDecoder(io.LimitReader(c.r.Body, maxRequestBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		c.fail(http.StatusBadRequest, "invalid JSON body: %v", err)
		return false
	}
	return true
}

// clientRef names a client in control request bodies.
type clientRef struct {
	AccountID string `json:"account_id"`
	ClientID  string `json:"client_id"`
}

// serveControl serves /_emulator/*. Control calls are never counted or logged.
func (s *Server) serveControl(w http.ResponseWriter, r *http.Request, p string) {
	c := control{w: w, r: r}
	if rest, ok := strings.CutPrefix(p, "/clients/"); ok {
		s.controlClient(c, rest)
		return
	}
	if s.serveControlDNS(c, p) {
		return
	}
	if s.serveControlTokens(c, p) {
		return
	}
	switch r.Method + " " + p {
	case "GET /stats":
		c.reply(http.StatusOK, s.Stats())
	case "GET /requests":
		c.reply(http.StatusOK, requestsView(s.Requests()))
	case "POST /reset":
		s.Reset()
		c.reply(http.StatusOK, map[string]bool{"reset": true})
	case "POST /reset-stats":
		s.ResetStats()
		c.reply(http.StatusOK, map[string]bool{"reset": true})
	case "PUT /faults":
		var f Faults
		if !c.decode(&f) {
			return
		}
		if err := f.Validate(); err != nil {
			c.fail(http.StatusBadRequest, "%v", err)
			return
		}
		s.SetFaults(f)
		c.reply(http.StatusOK, f)
	case "DELETE /faults":
		s.ClearFaults()
		c.reply(http.StatusOK, Faults{Rules: []FaultRule{}})
	case "GET /strict":
		c.reply(http.StatusOK, s.Strict())
	case "PUT /strict":
		var st Strict
		if !c.decode(&st) {
			return
		}
		if err := st.Validate(); err != nil {
			c.fail(http.StatusBadRequest, "%v", err)
			return
		}
		s.SetStrict(st)
		c.reply(http.StatusOK, st)
	case "POST /verification":
		s.controlVerification(c)
	case "POST /clients":
		s.controlSeed(c)
	case "POST /secret-check":
		var in struct {
			clientRef
			ClientSecret string `json:"client_secret"`
		}
		if c.decode(&in) {
			c.reply(http.StatusOK, s.CheckSecret(in.AccountID, in.ClientID, in.ClientSecret))
		}
	default:
		c.fail(http.StatusNotFound, "unknown emulator control endpoint %s %s", r.Method, controlPrefix+p)
	}
}

func (s *Server) controlVerification(c control) {
	var in struct {
		clientRef
		Status string `json:"status"`
	}
	if !c.decode(&in) {
		return
	}
	if err := s.SetVerification(in.AccountID, in.ClientID, in.Status); err != nil {
		c.failFor(err)
		return
	}
	got, _ := s.GetClient(in.AccountID, in.ClientID)
	c.reply(http.StatusOK, got)
}

func (s *Server) controlSeed(c control) {
	var in struct {
		AccountID    string            `json:"account_id"`
		Client       cfapi.OAuthClient `json:"client"`
		ClientSecret string            `json:"client_secret"`
	}
	if !c.decode(&in) {
		return
	}
	got, err := s.SeedClient(in.AccountID, in.Client, in.ClientSecret)
	if err != nil {
		c.fail(http.StatusBadRequest, "%v", err)
		return
	}
	c.reply(http.StatusOK, got)
}

// controlClient reads (GET), changes (PATCH: a JSON merge of the sent fields,
// unvalidated) or deletes one client out of band: /clients/{account_id}/{client_id}.
func (s *Server) controlClient(c control, rest string) {
	parts := strings.Split(rest, "/")
	var accountID, clientID string
	var err1, err2 error
	if len(parts) == 2 {
		accountID, err1 = url.PathUnescape(parts[0])
		clientID, err2 = url.PathUnescape(parts[1])
	}
	if len(parts) != 2 || err1 != nil || err2 != nil || accountID == "" || clientID == "" {
		c.fail(http.StatusNotFound, "expected %s/clients/{account_id}/{client_id}", controlPrefix)
		return
	}
	switch c.r.Method {
	case http.MethodGet:
		got, ok := s.GetClient(accountID, clientID)
		if !ok {
			c.failFor(ErrNotFound)
			return
		}
		c.reply(http.StatusOK, got)
	case http.MethodDelete:
		if err := s.DeleteClient(accountID, clientID); err != nil {
			c.failFor(err)
			return
		}
		c.reply(http.StatusOK, map[string]string{"id": clientID})
	case http.MethodPatch:
		var patch map[string]json.RawMessage
		if !c.decode(&patch) {
			return
		}
		current, ok := s.GetClient(accountID, clientID)
		if !ok {
			c.failFor(ErrNotFound)
			return
		}
		if err := mergeJSON(&current, patch); err != nil {
			c.fail(http.StatusBadRequest, "%v", err)
			return
		}
		if err := s.MutateClient(accountID, clientID, func(cl *cfapi.OAuthClient) { *cl = current }); err != nil {
			c.failFor(err)
			return
		}
		got, _ := s.GetClient(accountID, clientID)
		c.reply(http.StatusOK, got)
	default:
		c.fail(http.StatusMethodNotAllowed, "use GET, PATCH or DELETE")
	}
}

// mergeJSON overlays the patch's top-level fields on c. On error c is unchanged.
func mergeJSON(c *cfapi.OAuthClient, patch map[string]json.RawMessage) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return err
	}
	maps.Copy(fields, patch)
	merged, err := json.Marshal(fields)
	if err != nil {
		return err
	}
	var out cfapi.OAuthClient
	dec := json.NewDecoder(strings.NewReader(string(merged)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		return fmt.Errorf("invalid client fields: %w", err)
	}
	*c = out
	return nil
}

// requestView shows a recorded body as JSON when it is JSON, else as a string.
type requestView struct {
	Method string          `json:"method"`
	Route  string          `json:"route"`
	Path   string          `json:"path"`
	Query  string          `json:"query,omitempty"`
	Body   json.RawMessage `json:"body,omitempty"`
	Status int             `json:"status"`
}

func requestsView(in []RecordedRequest) []requestView {
	out := make([]requestView, len(in))
	for i, r := range in {
		v := requestView{Method: r.Method, Route: r.Route, Path: r.Path, Query: r.Query, Status: r.Status}
		switch {
		case len(r.Body) == 0:
		case json.Valid(r.Body):
			v.Body = r.Body
		default:
			v.Body, _ = json.Marshal(string(r.Body))
		}
		out[i] = v
	}
	return out
}
