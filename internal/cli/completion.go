package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

// completionCommand writes a shell completion script for bash, zsh or
// fish to standard output.
func (a *app) completionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "Print a shell completion script",
		Long: `Print a shell completion script.

  bash:  source <(tdproof completion bash)     # or save it under /etc/bash_completion.d/
  zsh:   tdproof completion zsh > "${fpath[1]}/_tdproof"
  fish:  tdproof completion fish > ~/.config/fish/completions/tdproof.fish`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"bash", "zsh", "fish"},
		RunE: func(cmd *cobra.Command, args []string) error {
			a.ran = true
			root := cmd.Root()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(a.stdout, true)
			case "zsh":
				return root.GenZshCompletion(a.stdout)
			case "fish":
				return root.GenFishCompletion(a.stdout, true)
			}
			return &usageError{err: fmt.Errorf("unknown shell %q (bash, zsh or fish)", args[0])}
		},
	}
}
