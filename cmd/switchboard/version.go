package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

func versionString() string {
	info, _ := debug.ReadBuildInfo()
	return formatVersion(version, info)
}

// formatVersion is the version line: the version set at build time, else
// the module's (go install ...@v1.2.3), then Go's version, the platform
// and the build tags. The tags tell a binary built as make build builds
// it (-tags stdjson) from a plain go build of the same source.
func formatVersion(v string, info *debug.BuildInfo) string {
	tags := ""
	if info != nil {
		if v == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			v = info.Main.Version
		}
		for _, s := range info.Settings {
			if s.Key == "-tags" && s.Value != "" {
				tags = ", tags " + s.Value
			}
		}
	}
	return fmt.Sprintf("switchboard %s (%s, %s/%s%s)", v, runtime.Version(), runtime.GOOS, runtime.GOARCH, tags)
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), versionString())
			return nil
		},
	}
}
