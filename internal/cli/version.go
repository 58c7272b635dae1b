package cli

import (
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at link time with
// -ldflags "-X github.com/tdproof/tdproof/internal/cli.version=v1.2.3";
// if empty, the module version from the build info is used.
var version string

// VersionMediaType identifies the JSON schema of tdproof version.
const VersionMediaType = "application/vnd.tdproof.version.v1+json"

type versionInfo struct {
	MediaType string `json:"media_type"`
	Version   string `json:"version"`
	Commit    string `json:"commit,omitempty"`
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"`
}

func buildVersion() versionInfo {
	v := versionInfo{MediaType: VersionMediaType, Version: version, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v.Version == "" {
			v.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				v.Commit = s.Value
			}
		}
	}
	if v.Version == "" {
		v.Version = "(devel)"
	}
	return v
}

func versionString() string {
	v := buildVersion()
	s := v.Version
	if v.Commit != "" {
		s += " (" + v.Commit + ")"
	}
	return s + " " + v.GoVersion + " " + v.Platform
}

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the tdproof version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a.ran = true
			if outputFormat(cmd) == formatJSON {
				return writeJSON(a.stdout, buildVersion())
			}
			p := &printer{w: a.stdout}
			p.printf("tdproof %s\n", versionString())
			return p.err
		},
	}
}
