package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/agentid/agentid/policy"
)

func newPolicyCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Check AgentPolicy files",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "check FILE",
		Short: "Validate a policy; print errors and warnings; exit non-zero on errors",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			p, warnings, err := policy.Load(args[0])
			for _, w := range warnings {
				fmt.Fprintf(out, "warning: %s\n", w)
			}
			if err != nil {
				var le *policy.LoadError
				if errors.As(err, &le) {
					for _, fe := range le.Errors {
						if fe.Field == "" {
							fmt.Fprintf(out, "error: %s\n", fe.Message)
						} else {
							fmt.Fprintf(out, "error: %s: %s\n", fe.Field, fe.Message)
						}
					}
				} else {
					fmt.Fprintf(out, "error: %v\n", err)
				}
				return exitError{1}
			}
			if _, err := policy.NewEngine(p, policy.EngineOptions{}); err != nil {
				fmt.Fprintf(out, "error: %v\n", err)
				return exitError{1}
			}
			fmt.Fprintf(out, "%s: ok (%s, mode %s, %d warning(s))\n", args[0], p.APIVersion, p.Mode(), len(warnings))
			return nil
		},
	})
	addPolicyIntegrityCmds(cmd)
	return cmd
}
