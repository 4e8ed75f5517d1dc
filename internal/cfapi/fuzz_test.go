package cfapi

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzDecodeEnvelope feeds arbitrary statuses and bodies to the envelope decoder. It
// must never panic, must only succeed for a 2xx with success:true, and every failure
// must carry the status and render without panicking.
func FuzzDecodeEnvelope(f *testing.F) {
	f.Add(200, []byte(`{"success":true,"errors":[],"messages":[],"result":{"client_id":"a"}}`))
	f.Add(200, []byte(`{"success":false,"errors":[],"messages":[],"result":null}`))
	f.Add(400, []byte(`{"success":false,"errors":[{"code":12007,"message":"colon","source":{"pointer":"/scopes/1"}}]}`))
	f.Add(502, []byte("<html>502 Bad Gateway</html>"))
	f.Add(200, []byte(`{"success":true,"result":{"client_id":"`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		result, apiErr := decodeEnvelope(status, body)
		if apiErr == nil {
			if status < 200 || status > 299 {
				t.Fatalf("status %d decoded as success", status)
			}
			var env struct{ Success bool }
			if err := json.Unmarshal(body, &env); err != nil || !env.Success {
				t.Fatalf("success without success:true in %q", body)
			}
			if len(result) > 0 && !json.Valid(result) {
				t.Fatalf("result %q is not valid JSON", result)
			}
			return
		}
		if apiErr.StatusCode != status {
			t.Fatalf("APIError status %d, want %d", apiErr.StatusCode, status)
		}
		if status >= 200 && status < 300 && apiErr.Err == nil {
			t.Fatalf("2xx failure without a cause")
		}
		var err error = apiErr
		var target *APIError
		if !errors.As(err, &target) {
			t.Fatal("errors.As does not find the APIError")
		}
		_ = apiErr.Error()
		_ = IsTransient(err)
	})
}
