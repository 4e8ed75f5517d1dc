package cfemu

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"time"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

// deliver writes resp, hanging first or aborting the connection for faults.
func (s *Server) deliver(w http.ResponseWriter, r *http.Request, resp response) {
	if resp.hang != nil {
		if d := *resp.hang; d > 0 {
			if !sleep(r.Context(), d) {
				return
			}
		} else {
			<-r.Context().Done()
			return
		}
	}
	if resp.abort {
		// net/http closes the connection without a response and without logging.
		panic(http.ErrAbortHandler)
	}
	for k, v := range resp.header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.status)
	_, _ = w.Write(resp.body)
}

// sleep waits d or until ctx ends; it reports whether the full wait happened.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// envelope is Cloudflare's v4 response wrapper.
type envelope struct {
	Success    bool                `json:"success"`
	Errors     []cfapi.ErrorDetail `json:"errors"`
	Messages   []cfapi.ErrorDetail `json:"messages"`
	Result     any                 `json:"result"`
	ResultInfo *resultInfo         `json:"result_info,omitempty"`
}

type resultInfo struct {
	Count      int `json:"count"`
	Page       int `json:"page"`
	PerPage    int `json:"per_page"`
	TotalCount int `json:"total_count"`
	// TotalPages is sent by the paginated zone and DNS record lists only.
	TotalPages *int `json:"total_pages,omitempty"`
}

func jsonResponse(status int, v any) response {
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(`{"success":false,"errors":[{"code":12020,"message":"emulator could not encode its response"}],"messages":[],"result":null}`)
		status = http.StatusInternalServerError
	}
	return response{status: status, header: http.Header{"Content-Type": {"application/json"}}, body: b}
}

func (s *Server) success(result any, info *resultInfo) response {
	return jsonResponse(http.StatusOK, envelope{Success: true, Errors: []cfapi.ErrorDetail{}, Messages: []cfapi.ErrorDetail{}, Result: result, ResultInfo: info})
}

// errorResponse answers with the status of the first error's code (see codes.go), as
// the active Strict modes read it.
func (s *Server) errorResponse(errs ...cfapi.ErrorDetail) response {
	status := http.StatusBadRequest
	if len(errs) > 0 {
		if st := s.strict.st.StatusForCode(errs[0].Code); st != 0 {
			status = st
		}
	}
	return jsonResponse(status, envelope{Errors: errs, Messages: []cfapi.ErrorDetail{}})
}

func apiError(code int, message, pointer string) cfapi.ErrorDetail {
	d := cfapi.ErrorDetail{Code: code, Message: message}
	if pointer != "" {
		d.Source = &cfapi.ErrorSource{Pointer: pointer}
	}
	return d
}

// randomHex returns n random bytes as 2n lowercase hex characters.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}
