package approve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func webhookReq(t *testing.T) Request {
	t.Helper()
	d, err := Digest(testKey, "write_file", json.RawMessage(`{"path":"/tmp/x","content":"AKIA..."}`))
	if err != nil {
		t.Fatal(err)
	}
	return Request{
		Tool:       "write_file",
		Arguments:  json.RawMessage(`{"path":"/tmp/x", "content":"[REDACTED:aws_key]"}`),
		PolicyHash: "ph",
		SessionID:  "sid",
		Expires:    time.Date(2030, 1, 2, 3, 4, 5, 6e6, time.UTC),
		Digest:     d,
	}
}

// verdict answers with decision for whatever digest was asked about.
func verdict(decision string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Digest string }
		json.NewDecoder(r.Body).Decode(&body)
		fmt.Fprintf(w, `{"decision":%q,"digest":%q}`, decision, body.Digest)
	}
}

func TestWebhookSendsTheBoundRequest(t *testing.T) {
	req := webhookReq(t)
	var got map[string]any
	var header http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		header = r.Header.Clone()
		if r.Method != http.MethodPost {
			t.Errorf("method %s", r.Method)
		}
		json.NewDecoder(r.Body).Decode(&got)
		fmt.Fprintf(w, `{"decision":"allow","digest":%q,"note":"ok"}`, req.Digest)
	}))
	defer srv.Close()

	a := Webhook(srv.URL, WebhookOptions{Header: http.Header{"Authorization": {"Bearer s3cret"}}})
	if an, err := a.Approve(context.Background(), req); an != Approved || err != nil {
		t.Fatalf("got %v, %v", an, err)
	}
	want := map[string]any{
		"tool":        "write_file",
		"arguments":   map[string]any{"path": "/tmp/x", "content": "[REDACTED:aws_key]"},
		"policy_hash": "ph",
		"session_id":  "sid",
		"expires_at":  "2030-01-02T03:04:05.006Z",
		"digest":      req.Digest,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("request body = %v\nwant %v", got, want)
	}
	if header.Get("Authorization") != "Bearer s3cret" || header.Get("Content-Type") != "application/json" {
		t.Errorf("headers = %v", header)
	}
}

func TestWebhookOutcomes(t *testing.T) {
	req := webhookReq(t)
	tests := map[string]struct {
		handler http.HandlerFunc
		want    Answer
		wantErr bool
	}{
		"allow": {verdict("allow"), Approved, false},
		"deny":  {verdict("deny"), Denied, false},
		"digest mismatch": {func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `{"decision":"allow","digest":"0000000000000000000000000000000000000000000000000000000000000000"}`)
		}, Denied, true},
		"missing digest": {func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `{"decision":"allow"}`)
		}, Denied, true},
		"unknown decision": {verdict("ALLOW"), Denied, true},
		"server error": {func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "boom", http.StatusInternalServerError)
		}, Denied, true},
		"201 is not 200": {func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusCreated)
			fmt.Fprintf(w, `{"decision":"allow","digest":%q}`, req.Digest)
		}, Denied, true},
		"redirect is not followed": {func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
		}, Denied, true},
		"malformed body": {func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `{"decision":"allow","digest":`)
		}, Denied, true},
		"not an object": {func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `["allow"]`)
		}, Denied, true},
		"trailing data": {func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `{"decision":"allow","digest":%q} {}`, req.Digest)
		}, Denied, true},
		"duplicate decision key": {func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `{"decision":"deny","decision":"allow","digest":%q}`, req.Digest)
		}, Denied, true},
		"case-variant key does not override": {func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `{"decision":"deny","Decision":"allow","digest":%q}`, req.Digest)
		}, Denied, false},
		"decision of wrong type": {func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `{"decision":true,"digest":%q}`, req.Digest)
		}, Denied, true},
		"body larger than 64 KiB": {func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `{"decision":"allow","digest":%q,"pad":"%s"}`, req.Digest, strings.Repeat("x", 70<<10))
		}, Denied, true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			an, err := Webhook(srv.URL, WebhookOptions{}).Approve(context.Background(), req)
			if an != tc.want || (err != nil) != tc.wantErr {
				t.Fatalf("got %v, %v; want %v (error %v)", an, err, tc.want, tc.wantErr)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "approve: ") {
				t.Fatalf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestWebhookTimesOut(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)

	req := webhookReq(t)
	expiring := req
	expiring.Expires = time.Now().Add(50 * time.Millisecond)
	cancelled, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)

	// The server never answers, so each call can end only by the deadline
	// or cancellation under test; the error says which one ended it. A
	// deadline that were not applied would hang until go test's -timeout.
	tests := map[string]struct {
		ctx  context.Context
		req  Request
		opts WebhookOptions
		want error
	}{
		"option timeout":      {context.Background(), req, WebhookOptions{Timeout: 50 * time.Millisecond}, context.DeadlineExceeded},
		"request expiry":      {context.Background(), expiring, WebhookOptions{}, context.DeadlineExceeded},
		"caller cancels":      {cancelled, req, WebhookOptions{}, context.Canceled},
		"client timeout":      {context.Background(), req, WebhookOptions{Client: &http.Client{Timeout: 50 * time.Millisecond}}, context.DeadlineExceeded},
		"expired before sent": {context.Background(), Request{Tool: "t", Digest: "d", Expires: time.Now().Add(-time.Second)}, WebhookOptions{}, context.DeadlineExceeded},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			an, err := Webhook(srv.URL, tc.opts).Approve(tc.ctx, tc.req)
			if an != TimedOut || !errors.Is(err, tc.want) {
				t.Fatalf("got %v, %v; want TimedOut by %v", an, err, tc.want)
			}
		})
	}
}

func TestWebhookSlowBodyTimesOut(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"decision":`)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	an, err := Webhook(srv.URL, WebhookOptions{Timeout: 100 * time.Millisecond}).Approve(context.Background(), webhookReq(t))
	if an != TimedOut || err == nil {
		t.Fatalf("got %v, %v; want TimedOut", an, err)
	}
}

func TestWebhookFailsClosedWithoutAServer(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	an, err := Webhook(url, WebhookOptions{}).Approve(context.Background(), webhookReq(t))
	if an != Denied || err == nil {
		t.Fatalf("got %v, %v; want Denied with an error", an, err)
	}
	an, err = Webhook("::not a url", WebhookOptions{}).Approve(context.Background(), webhookReq(t))
	if an != Denied || err == nil {
		t.Fatalf("bad URL: got %v, %v", an, err)
	}
}

func TestWebhookRefusesRequestsItCannotBind(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		verdict("allow")(w, r)
	}))
	defer srv.Close()
	tests := map[string]Request{
		"no digest":         {Tool: "t", Arguments: json.RawMessage(`{}`)},
		"invalid arguments": {Tool: "t", Arguments: json.RawMessage(`{"a":`), Digest: "d"},
	}
	for name, req := range tests {
		t.Run(name, func(t *testing.T) {
			if an, err := Webhook(srv.URL, WebhookOptions{}).Approve(context.Background(), req); an != Denied || err == nil {
				t.Fatalf("got %v, %v", an, err)
			}
		})
	}
	if calls.Load() != 0 {
		t.Fatalf("the webhook was called %d times", calls.Load())
	}
}

func TestWebhookSendsEmptyArgumentsAsObject(t *testing.T) {
	var args json.RawMessage
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Arguments json.RawMessage
			Digest    string
		}
		json.NewDecoder(r.Body).Decode(&body)
		args = body.Arguments
		fmt.Fprintf(w, `{"decision":"deny","digest":%q}`, body.Digest)
	}))
	defer srv.Close()
	an, err := Webhook(srv.URL, WebhookOptions{}).Approve(context.Background(), Request{Tool: "t", Digest: "d"})
	if an != Denied || err != nil || string(args) != "{}" {
		t.Fatalf("got %v, %v, arguments %s", an, err, args)
	}
}
