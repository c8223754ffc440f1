package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/agentid/agentid/demo"
)

func newDemoCmd(*globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "Show the proxy enforcing a policy in front of a built-in example MCP server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			return demo.Run(cmd.Context(), cmd.OutOrStdout(), exe, "example-server")
		},
	}
}
