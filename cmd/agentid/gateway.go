package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/agentid/agentid/gateway"
)

func newGatewayCmd(g *globalFlags) *cobra.Command {
	var (
		sf        serverFlags
		policy    string
		upstream  string
		path      string
		publicURL string
		origins   []string
	)
	cmd := &cobra.Command{
		Use:   "gateway --policy FILE --listen ADDR (--upstream URL | -- COMMAND [ARGS...])",
		Short: "Enforce the policy on MCP over Streamable HTTP, in front of a remote MCP server or stdio servers it spawns",
		Long: `gateway is an MCP Streamable HTTP endpoint (default path /mcp) in front of the
MCP server at --upstream, or of a stdio MCP server (the command after --) that it
starts for each session and stops when the session ends (DELETE, idle, or
shutdown). Every message in both directions goes through the same
enforcement core as agentid proxy. When the policy enables identity, every
request carries an AIP token in "Authorization: Bearer" (obtained from the
gateway's own POST /v1/token); tokens are validated per request and never
forwarded. The endpoints of agentid serve (/v1/token, /v1/jwks, /health,
/metrics, ...) are served beside MCP, and replicas share state through --store
as serve's do.

Traces (a span per decision) are exported over OTLP/HTTP when the standard
OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set (with
the other OTEL_EXPORTER_OTLP_* variables).

A listener that is not loopback needs TLS. Browser origins must be listed with
--allow-origin. SIGHUP, or a change of the policy file, reloads it; SIGTERM and
SIGINT drain.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if (upstream == "") == (len(args) == 0) {
				return fmt.Errorf("give either --upstream URL or -- COMMAND [ARGS...]")
			}
			var command *gateway.Command
			if len(args) > 0 {
				command = &gateway.Command{Path: args[0], Args: args[1:], Stderr: cmd.ErrOrStderr()}
			}
			if policy == "" {
				return fmt.Errorf("--policy is required")
			}
			log, err := g.logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			sf.policyPaths = []string{policy}
			r, err := sf.build(log)
			if err != nil {
				return err
			}
			defer r.Close()
			tracer, stopTracing, err := otlpTracer(log)
			if err != nil {
				return err
			}
			defer stopTracing()
			gw, err := gateway.New(gateway.Config{
				Server: r.srv, Upstream: upstream, Command: command, Path: path, PublicURL: publicURL, AllowedOrigins: origins,
				Audit: r.audit, AuditBestEffort: sf.auditBestEffort, Log: log, Tracer: tracer,
			})
			if err != nil {
				return err
			}
			defer gw.Close()
			r.listener.Handler = gw.Handler()
			if command != nil {
				log.Info("gateway", "path", path, "command", args[0])
			} else {
				log.Info("gateway", "path", path, "upstream", upstream)
			}
			return r.serveUntilSignal(log)
		},
	}
	f := cmd.Flags()
	f.StringVar(&policy, "policy", "", "AgentPolicy file")
	f.StringVar(&upstream, "upstream", "", "URL of the MCP server (Streamable HTTP), e.g. http://127.0.0.1:3001/mcp")
	f.StringVar(&path, "path", gateway.DefaultPath, "path of the MCP endpoint")
	f.StringVar(&publicURL, "public-url", "", "the gateway's base URL as clients reach it, for the OAuth protected-resource metadata (default: taken from each request)")
	f.StringArrayVar(&origins, "allow-origin", nil, "browser origin allowed to send requests (e.g. https://app.example.com); repeatable. Requests without an Origin header are not affected")
	sf.register(f)
	return cmd
}

// otlpTracer is the tracer that exports over OTLP/HTTP when the standard
// OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT variable is set; nil, and nothing
// exported, otherwise.
func otlpTracer(log *slog.Logger) (trace.Tracer, func(), error) {
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return nil, func() {}, nil
	}
	exp, err := otlptracehttp.New(context.Background())
	if err != nil {
		return nil, nil, fmt.Errorf("OTLP exporter: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "agentid-gateway"))))
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tp.Shutdown(ctx); err != nil {
			log.Warn("flushing traces failed", "error", err)
		}
	}
	return tp.Tracer("github.com/agentid/agentid/gateway"), stop, nil
}
