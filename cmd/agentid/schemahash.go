package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentid/agentid/policy"
	"github.com/agentid/agentid/proxy"
)

func newSchemaHashCmd(*globalFlags) *cobra.Command {
	var toolsFile, tool, alg string
	cmd := &cobra.Command{
		Use:   "schema-hash (--tools-file FILE | -- COMMAND [ARGS...]) --tool NAME",
		Short: "Print the schema_hash of a tool, to pin it in a policy",
		Long: `schema-hash prints "<alg>:<hex>" over the RFC 8785 form of the tool's
{name, description, inputSchema}, as spec §3.5.4 defines. The tool definition
comes from a JSON file (a tools/list result, or an array of tools) or from a
server started with COMMAND and asked with initialize + tools/list.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			var tools []json.RawMessage
			switch {
			case toolsFile != "" && len(args) > 0:
				return fmt.Errorf("give --tools-file or a COMMAND, not both")
			case toolsFile != "":
				data, err := os.ReadFile(toolsFile)
				if err != nil {
					return err
				}
				if tools, err = proxy.ParseToolsList(data); err != nil {
					return err
				}
			case len(args) > 0:
				var err error
				tools, err = proxy.ListTools(cmd.Context(), proxy.Command{Path: args[0], Args: args[1:], Stderr: os.Stderr}, 30*time.Second)
				if err != nil {
					return err
				}
			default:
				return fmt.Errorf("give --tools-file FILE or -- COMMAND [ARGS...]")
			}
			h, err := policy.ToolSchemaHashByName(tools, tool, alg)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), h)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&toolsFile, "tools-file", "", "JSON file: a tools/list result or an array of tool definitions")
	f.StringVar(&tool, "tool", "", "tool name (exact)")
	f.StringVar(&alg, "alg", "sha256", "sha256, sha384 or sha512")
	_ = cmd.MarkFlagRequired("tool")
	return cmd
}
