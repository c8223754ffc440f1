// Package alert posts the alert of spec §3.8.3 step 6: when failover_mode
// fail_open starts letting calls through, a JSON POST to the policy's
// fail_open_constraints.alert_webhook, fire-and-forget, so that a human
// learns that enforcement is degraded.
package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/agentid/agentid/enforce"
	"github.com/agentid/agentid/identity"
	"github.com/agentid/agentid/internal/trusturl"
)

// Timeout bounds one post.
const Timeout = 5 * time.Second

// Poster posts alerts. Its zero value is not usable; use New.
type Poster struct {
	client *http.Client
	log    *slog.Logger
}

// New returns a Poster that logs failed posts to log (nil discards).
func New(log *slog.Logger) *Poster {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Poster{client: &http.Client{Timeout: Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, log: log}
}

// Body is what the webhook receives.
type Body struct {
	Event       string `json:"event"` // "fail_open"
	Since       string `json:"since"`
	Tool        string `json:"tool"`
	Unavailable string `json:"unavailable"`
	PolicyHash  string `json:"policy_hash"`
}

// FailOpen posts a in the background (an enforce.Config.OnFailOpen). An
// alert without a webhook is only logged.
func (p *Poster) FailOpen(a enforce.FailOpenAlert) {
	p.log.Warn("failover_mode=fail_open: calls are let through unchecked", "unavailable", a.What, "tool", a.Tool)
	if a.Webhook == "" {
		return
	}
	go func() {
		if err := p.Post(context.Background(), a); err != nil {
			p.log.Error("alert_webhook failed", "error", err)
		}
	}()
}

// Post posts a to its webhook and waits for the answer.
func (p *Poster) Post(ctx context.Context, a enforce.FailOpenAlert) error {
	u, err := trusturl.Check(a.Webhook)
	if err != nil {
		return fmt.Errorf("alert: %w", err)
	}
	b, _ := json.Marshal(Body{Event: "fail_open", Since: identity.FormatTime(a.Since), Tool: a.Tool, Unavailable: a.What, PolicyHash: a.PolicyHash})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("alert: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("alert: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("alert: webhook answered %s", resp.Status)
	}
	return nil
}
