package main

import (
	"github.com/spf13/cobra"

	"github.com/agentid/agentid/conformance"
)

func newConformanceCmd(*globalFlags) *cobra.Command {
	var (
		opts    conformance.Options
		verbose bool
	)
	cmd := &cobra.Command{
		Use:   "conformance --suite DIR [--level basic|full|extended|identity|server]",
		Short: "Run the AIP conformance vectors against this build",
		Long: `conformance runs every vector of the chosen level (and the levels below it)
through the real proxy pipeline and prints failures and skips with their
reasons, ending with the line "N passed, M failed, K skipped". A pass that
rests on an expectation, input or reading the runner defines rather than
the vector is printed with "(runner-defined ...)" and its reason, and
counted on the line before the summary instead of in N. A vector key the
runner does not understand fails the vector. A vector that contradicts the
spec is run as written and fails; it is marked "[the vector contradicts the
spec: ...]" and named on the "spec over vector" line. It exits non-zero when
any other vector fails.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rep, err := conformance.Run(cmd.Context(), opts)
			if err != nil {
				return err
			}
			rep.Write(cmd.OutOrStdout(), verbose)
			if rep.Unexpected() > 0 {
				return exitError{1}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Suite, "suite", "", "conformance directory (e.g. ../shared/spec/aip/conformance)")
	f.StringVar(&opts.Level, "level", "full", "basic, full, extended, identity or server")
	f.StringSliceVar(&opts.Only, "only", nil, "run only these vector ids")
	f.BoolVarP(&verbose, "verbose", "v", false, "print passing vectors too")
	_ = cmd.MarkFlagRequired("suite")
	return cmd
}
