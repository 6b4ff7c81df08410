// Command switchboard is the Switchboard gateway: one AI sales assistant on
// Selarti behind many messengers.
//
//	switchboard serve -c config.yaml   run the gateway
//	switchboard check -c config.yaml   validate a config and exit (--online: try the credentials too)
//	switchboard demo [--port 8080]     webchat + a local Selarti simulator, no account needed
//	switchboard version                print the version
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	_ "github.com/switchboard-gw/switchboard/adapters/all" // every adapter kind
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "switchboard:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "switchboard",
		Short:         "One AI sales assistant on Selarti, behind many messengers",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCmd(), newCheckCmd(), newDemoCmd(), newDeadLettersCmd(), newVersionCmd())
	return root
}
