package main

import (
	"github.com/spf13/cobra"

	"github.com/agentid/agentid/exampleserver"
)

// newExampleServerCmd exposes the built-in example MCP server that
// `agentid demo` puts behind the proxy. Hidden: it is a fixture, not a feature.
func newExampleServerCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "example-server",
		Short:  "Serve the built-in example MCP server on stdio",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if code := exampleserver.Main(); code != 0 {
				return exitError{code}
			}
			return nil
		},
	}
}
