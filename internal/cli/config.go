package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// configFlag is the flag that names a command's YAML configuration file.
const configFlag = "config"

// maxConfigSize bounds a configuration file.
const maxConfigSize = 1 << 20

// withConfigFile adds --config FILE to c: a YAML mapping whose keys are
// c's flag names with '-' replaced by '_' (listen, data_dir, pccs_url, …)
// and whose values are what the flag would take (a sequence is joined with
// commas). Before c runs, every key whose flag was set neither on the
// command line nor through its TDPROOF_* variable is applied, so flags win
// over the environment, which wins over the file. Unknown keys, keys of
// command-line-only flags, and non-scalar values are usage errors. Call it
// after registering c's flags and RunE.
func (a *app) withConfigFile(c *cobra.Command) {
	c.Flags().String(configFlag, "", "read settings from the YAML `FILE` (keys: flag names with '_' for '-'); flags and TDPROOF_* variables win")
	run := c.RunE
	c.RunE = func(cmd *cobra.Command, args []string) error {
		a.ran = true
		if err := applyConfigFile(cmd.Flags()); err != nil {
			return err
		}
		return run(cmd, args)
	}
}

// configKey is the YAML key of a flag.
func configKey(f *pflag.Flag) string { return strings.ReplaceAll(f.Name, "-", "_") }

// applyConfigFile reads the file named by --config, if any, into fl.
func applyConfigFile(fl *pflag.FlagSet) error {
	name, err := fl.GetString(configFlag)
	if err != nil || name == "" {
		return err
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return &usageError{err: fmt.Errorf("--config: %w", err)}
	}
	if len(b) > maxConfigSize {
		return &usageError{err: fmt.Errorf("--config %s: larger than %d bytes", name, maxConfigSize)}
	}
	settings, err := parseConfig(b)
	if err != nil {
		return &usageError{err: fmt.Errorf("--config %s: %w", name, err)}
	}
	byKey := map[string]*pflag.Flag{}
	fl.VisitAll(func(f *pflag.Flag) { byKey[configKey(f)] = f })
	var errs []error
	for _, s := range settings {
		f := byKey[s.key]
		switch {
		case f == nil || f.Name == configFlag || f.Name == "help" || f.Name == "version":
			errs = append(errs, fmt.Errorf("line %d: unknown key %q", s.line, s.key))
			continue
		case len(f.Annotations[noEnvAnnotation]) > 0:
			errs = append(errs, fmt.Errorf("line %d: %s is read from the command line only", s.line, s.key))
			continue
		case f.Changed:
			continue // the command line or TDPROOF_* won
		}
		if err := fl.Set(f.Name, s.value); err != nil {
			errs = append(errs, fmt.Errorf("line %d: invalid %s %q: %w", s.line, s.key, s.value, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return &usageError{err: fmt.Errorf("--config %s: %w", name, err)}
	}
	return nil
}

// setting is one key of a configuration file.
type setting struct {
	key, value string
	line       int
}

// parseConfig reads a YAML mapping of keys to scalars or sequences of
// scalars, in file order. An empty document has no settings.
func parseConfig(b []byte) ([]setting, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, nil
	}
	m := doc.Content[0]
	if m.Kind == yaml.ScalarNode && m.Tag == "!!null" {
		return nil, nil
	}
	if m.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: want a mapping of settings", m.Line)
	}
	var out []setting
	seen := map[string]bool{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("line %d: a key must be a string", k.Line)
		}
		if seen[k.Value] {
			return nil, fmt.Errorf("line %d: duplicate key %q", k.Line, k.Value)
		}
		seen[k.Value] = true
		val, err := scalarValue(k.Value, v)
		if err != nil {
			return nil, err
		}
		out = append(out, setting{key: k.Value, value: val, line: k.Line})
	}
	return out, nil
}

func scalarValue(key string, v *yaml.Node) (string, error) {
	switch {
	case v.Kind == yaml.AliasNode:
		return "", fmt.Errorf("line %d: %s: aliases are not supported", v.Line, key)
	case v.Kind == yaml.ScalarNode && v.Tag == "!!null":
		return "", fmt.Errorf("line %d: %s has no value", v.Line, key)
	case v.Kind == yaml.ScalarNode:
		return v.Value, nil
	case v.Kind == yaml.SequenceNode:
		parts := make([]string, 0, len(v.Content))
		for _, e := range v.Content {
			if e.Kind != yaml.ScalarNode || e.Tag == "!!null" {
				return "", fmt.Errorf("line %d: %s: a list holds plain values only", e.Line, key)
			}
			parts = append(parts, e.Value)
		}
		return strings.Join(parts, ","), nil
	}
	return "", fmt.Errorf("line %d: %s: want a value or a list of values", v.Line, key)
}
