package cli

import (
	"strings"
	"testing"
)

func TestCompletion(t *testing.T) {
	t.Parallel()
	for shell, want := range map[string]string{"bash": "__start_tdproof", "zsh": "#compdef tdproof", "fish": "complete -c tdproof"} {
		o := invoke(t, nil, "completion", shell)
		o.wantCode(t, exitOK)
		if !strings.Contains(o.stdout, want) {
			t.Errorf("completion %s lacks %q", shell, want)
		}
	}
	invoke(t, nil, "completion", "tcsh").wantCode(t, exitUsage)
	invoke(t, nil, "completion").wantCode(t, exitUsage)
}
