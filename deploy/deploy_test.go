package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tdproof/tdproof/internal/cli"
)

// acceptArgs checks that tdproof accepts the command line args (every
// flag exists and takes the form used): the CLI parses the flags before
// --help.
func acceptArgs(t *testing.T, where string, args []string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := cli.Main(t.Context(), append(slices.Clone(args), "--help"), bytes.NewReader(nil), &stdout, &stderr)
	if code != 0 {
		t.Errorf("%s: tdproof %s: exit %d: %s", where, strings.Join(args, " "), code, stderr.String())
	}
}

// instruction is one Containerfile instruction.
type instruction struct{ op, arg string }

func parseContainerfile(t *testing.T, name string) []instruction {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var out []instruction
	var cur string
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if c, ok := strings.CutSuffix(line, "\\"); ok {
			cur += c + " "
			continue
		}
		cur += line
		op, arg, _ := strings.Cut(cur, " ")
		out = append(out, instruction{strings.ToUpper(op), strings.TrimSpace(arg)})
		cur = ""
	}
	return out
}

func jsonArray(t *testing.T, what, s string) []string {
	t.Helper()
	var v []string
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("%s %s: not a JSON array (exec form): %v", what, s, err)
	}
	return v
}

// TestContainerfile lints the image definition: scratch base, the static
// binary as entrypoint, a non-root numeric user, the /data volume, no RUN
// (there is no shell), and a CMD the CLI accepts.
func TestContainerfile(t *testing.T) {
	ins := parseContainerfile(t, "container/Containerfile")
	get := func(op string) []string {
		var v []string
		for _, i := range ins {
			if i.op == op {
				v = append(v, i.arg)
			}
		}
		return v
	}
	if from := get("FROM"); len(from) != 1 || from[0] != "scratch" {
		t.Errorf("FROM %v, want only scratch (no image pull)", from)
	}
	if run := get("RUN"); len(run) != 0 {
		t.Errorf("RUN %v: a scratch image has no shell", run)
	}
	if !slices.Contains(get("COPY"), "tdproof /tdproof") {
		t.Errorf("COPY %v lacks the binary", get("COPY"))
	}
	user := get("USER")
	if len(user) != 1 {
		t.Fatalf("USER %v, want one", user)
	}
	uid, _, _ := strings.Cut(user[0], ":")
	if uid == "0" || uid == "root" || strings.Trim(uid, "0123456789") != "" {
		t.Errorf("USER %q: want a numeric non-root uid (scratch has no /etc/passwd)", user[0])
	}
	vols := get("VOLUME")
	if len(vols) != 1 || !slices.Contains(jsonArray(t, "VOLUME", vols[0]), "/data") {
		t.Errorf("VOLUME %v, want /data", vols)
	}
	ep := get("ENTRYPOINT")
	if len(ep) != 1 || !slices.Equal(jsonArray(t, "ENTRYPOINT", ep[0]), []string{"/tdproof"}) {
		t.Errorf("ENTRYPOINT %v, want [\"/tdproof\"]", ep)
	}
	if !slices.Contains(get("ENV"), "TDPROOF_DATA_DIR=/data") {
		t.Errorf("ENV %v: the data directory must be the volume", get("ENV"))
	}
	cmd := get("CMD")
	if len(cmd) != 1 {
		t.Fatalf("CMD %v", cmd)
	}
	acceptArgs(t, "Containerfile CMD", jsonArray(t, "CMD", cmd[0]))
}

// unit is a parsed systemd unit: section → key → values in order.
type unit map[string]map[string][]string

func parseUnit(t *testing.T, name string) unit {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	var sec, cur string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cur == "" && (line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";")) {
			continue
		}
		if c, ok := strings.CutSuffix(line, "\\"); ok {
			cur += c + " "
			continue
		}
		line, cur = cur+line, ""
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			sec = line[1 : len(line)-1]
			u[sec] = map[string][]string{}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || sec == "" {
			t.Fatalf("%s: bad line %q", name, line)
		}
		u[sec][strings.TrimSpace(k)] = append(u[sec][strings.TrimSpace(k)], strings.TrimSpace(v))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// TestSystemdUnit lints the unit: the sandboxing directives, a state
// directory for the data, reload by SIGHUP, and an ExecStart the CLI
// accepts; with systemd-analyze on the machine, systemd verifies it too.
func TestSystemdUnit(t *testing.T) {
	const name = "systemd/tdproof.service"
	u := parseUnit(t, name)
	svc := u["Service"]
	if svc == nil {
		t.Fatal("no [Service]")
	}
	for k, want := range map[string]string{
		"DynamicUser": "yes", "ProtectSystem": "strict", "StateDirectory": "tdproof", "ProtectHome": "yes",
		"PrivateTmp": "yes", "PrivateDevices": "yes", "NoNewPrivileges": "yes", "CapabilityBoundingSet": "",
		"RestrictSUIDSGID": "yes", "ProtectKernelTunables": "yes", "ProtectControlGroups": "yes",
		"ExecReload": "/bin/kill -HUP $MAINPID",
	} {
		if got := svc[k]; len(got) != 1 || got[0] != want {
			t.Errorf("[Service] %s = %q, want %q", k, got, want)
		}
	}
	if len(u["Install"]["WantedBy"]) != 1 {
		t.Error("no [Install] WantedBy")
	}
	execStart := svc["ExecStart"]
	if len(execStart) != 1 {
		t.Fatalf("ExecStart %v", execStart)
	}
	words := strings.Fields(execStart[0])
	if words[0] != "/usr/local/bin/tdproof" {
		t.Errorf("ExecStart runs %s", words[0])
	}
	args := make([]string, 0, len(words)-1)
	for _, w := range words[1:] {
		w = strings.ReplaceAll(w, "${STATE_DIRECTORY}", "/var/lib/tdproof")
		w = strings.ReplaceAll(w, "${CREDENTIALS_DIRECTORY}", "/run/credentials/tdproof.service")
		if strings.Contains(w, "$") {
			t.Errorf("ExecStart: unexpected variable in %q", w)
		}
		args = append(args, w)
	}
	acceptArgs(t, "ExecStart", args)
	for _, cred := range []string{"kek.hex", "tls.crt", "tls.key"} {
		if !slices.ContainsFunc(svc["LoadCredential"], func(v string) bool { return strings.HasPrefix(v, cred+":") }) {
			t.Errorf("ExecStart reads credential %s, which no LoadCredential provides", cred)
		}
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze is not installed: only the lint above ran")
		return
	}
	// systemd verifies that the executable exists: point it at one.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	copyName := filepath.Join(dir, "tdproof.service")
	if err := os.WriteFile(copyName, bytes.ReplaceAll(b, []byte("/usr/local/bin/tdproof"), []byte(self)), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, analyze, "verify", "--man=no", copyName).CombinedOutput()
	// It exits 0 on directives it ignores: any word about the unit fails.
	if err != nil || bytes.Contains(out, []byte(copyName)) {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestKubernetes parses the example and checks what replicas on
// PostgreSQL need: a Deployment of at least two replicas, non-root with a
// read-only root filesystem, the database and KEK from a secret, HTTPS
// probes on the container's port, and a Service selecting the pods.
func TestKubernetes(t *testing.T) {
	b, err := os.ReadFile("kubernetes/tdproof.yaml")
	if err != nil {
		t.Fatal(err)
	}
	type container struct {
		Name  string   `yaml:"name"`
		Image string   `yaml:"image"`
		Args  []string `yaml:"args"`
		Env   []struct {
			Name      string `yaml:"name"`
			Value     string `yaml:"value"`
			ValueFrom *struct {
				SecretKeyRef *struct {
					Name string `yaml:"name"`
					Key  string `yaml:"key"`
				} `yaml:"secretKeyRef"`
			} `yaml:"valueFrom"`
		} `yaml:"env"`
		Ports []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		} `yaml:"ports"`
		ReadinessProbe  *probe `yaml:"readinessProbe"`
		LivenessProbe   *probe `yaml:"livenessProbe"`
		SecurityContext struct {
			ReadOnlyRootFilesystem   bool  `yaml:"readOnlyRootFilesystem"`
			AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
			Capabilities             struct {
				Drop []string `yaml:"drop"`
			} `yaml:"capabilities"`
		} `yaml:"securityContext"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
		} `yaml:"volumeMounts"`
	}
	type doc struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Metadata   struct {
			Name string `yaml:"name"`
		} `yaml:"metadata"`
		Spec struct {
			Replicas int `yaml:"replicas"`
			Selector struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			} `yaml:"selector"`
			Template struct {
				Metadata struct {
					Labels map[string]string `yaml:"labels"`
				} `yaml:"metadata"`
				Spec struct {
					SecurityContext struct {
						RunAsNonRoot bool `yaml:"runAsNonRoot"`
						RunAsUser    int  `yaml:"runAsUser"`
					} `yaml:"securityContext"`
					Containers []container `yaml:"containers"`
					Volumes    []struct {
						Name string `yaml:"name"`
					} `yaml:"volumes"`
				} `yaml:"spec"`
			} `yaml:"template"`
			// Service
			ServiceSelector map[string]string `yaml:"-"`
			Ports           []struct {
				Port       int    `yaml:"port"`
				TargetPort string `yaml:"targetPort"`
			} `yaml:"ports"`
		} `yaml:"spec"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	docs := map[string]doc{}
	var serviceSelector map[string]string
	for {
		var raw yaml.Node
		if err := dec.Decode(&raw); err != nil {
			if err.Error() == "EOF" {
				break
			}
			t.Fatal(err)
		}
		var kind struct {
			Kind string `yaml:"kind"`
			Spec struct {
				Selector map[string]any `yaml:"selector"`
			} `yaml:"spec"`
		}
		if err := raw.Decode(&kind); err != nil {
			t.Fatal(err)
		}
		var d doc
		if kind.Kind == "Service" {
			serviceSelector = map[string]string{}
			for k, v := range kind.Spec.Selector {
				serviceSelector[k], _ = v.(string)
			}
			// The Service's selector is a plain map: drop it before the
			// strict decode into doc.
			var m map[string]any
			if err := raw.Decode(&m); err != nil {
				t.Fatal(err)
			}
			delete(m["spec"].(map[string]any), "selector")
			nb, _ := yaml.Marshal(m)
			if err := yaml.Unmarshal(nb, &d); err != nil {
				t.Fatal(err)
			}
		} else if err := raw.Decode(&d); err != nil {
			t.Fatalf("%s: %v", kind.Kind, err)
		}
		docs[d.Kind] = d
	}
	dep, ok := docs["Deployment"]
	if !ok || dep.APIVersion != "apps/v1" {
		t.Fatalf("no apps/v1 Deployment: %v", docs)
	}
	svc, ok := docs["Service"]
	if !ok || svc.APIVersion != "v1" {
		t.Fatal("no v1 Service")
	}
	if dep.Spec.Replicas < 2 {
		t.Errorf("replicas %d: the example is for replicas on PostgreSQL", dep.Spec.Replicas)
	}
	labels := dep.Spec.Template.Metadata.Labels
	for k, v := range dep.Spec.Selector.MatchLabels {
		if labels[k] != v {
			t.Errorf("Deployment selector %s=%s does not match the pod labels", k, v)
		}
	}
	if len(serviceSelector) == 0 {
		t.Error("Service without selector")
	}
	for k, v := range serviceSelector {
		if labels[k] != v {
			t.Errorf("Service selector %s=%s does not match the pod labels", k, v)
		}
	}
	pod := dep.Spec.Template.Spec
	if !pod.SecurityContext.RunAsNonRoot || pod.SecurityContext.RunAsUser == 0 {
		t.Error("pod may run as root")
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	if !sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Errorf("container securityContext %+v: want a read-only root, no privilege escalation, all capabilities dropped", sc)
	}
	if !slices.ContainsFunc(c.VolumeMounts, func(m struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	}) bool {
		return m.MountPath == "/data"
	}) {
		t.Error("no volume at /data (the image's data directory)")
	}
	for _, m := range c.VolumeMounts {
		if !slices.ContainsFunc(pod.Volumes, func(v struct {
			Name string `yaml:"name"`
		}) bool {
			return v.Name == m.Name
		}) {
			t.Errorf("volume mount %s has no volume", m.Name)
		}
	}
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			env[e.Name] = "secret:" + e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
		default:
			env[e.Name] = e.Value
		}
	}
	for _, name := range []string{"TDPROOF_DB", "TDPROOF_KBS_KEK", "TDPROOF_ADMIN_TOKEN"} {
		if !strings.HasPrefix(env[name], "secret:") {
			t.Errorf("%s = %q, want it from a secret", name, env[name])
		}
	}
	// Every variable is one serve reads (its --help names them).
	var help bytes.Buffer
	if code := cli.Main(t.Context(), []string{"serve", "--help"}, bytes.NewReader(nil), &help, &help); code != 0 {
		t.Fatalf("serve --help: %d", code)
	}
	for name := range env {
		if !strings.Contains(help.String(), name) {
			t.Errorf("env %s: serve does not read it", name)
		}
	}
	acceptArgs(t, "Deployment args", c.Args)
	if len(c.Ports) != 1 {
		t.Fatalf("ports %v", c.Ports)
	}
	port := c.Ports[0]
	if !slices.Contains(c.Args, "--listen=0.0.0.0:"+itoa(port.ContainerPort)) {
		t.Errorf("containerPort %d is not the --listen port of %v", port.ContainerPort, c.Args)
	}
	for what, p := range map[string]*probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if p == nil || p.HTTPGet.Port != port.Name || p.HTTPGet.Scheme != "HTTPS" || (p.HTTPGet.Path != "/healthz" && p.HTTPGet.Path != "/readyz") {
			t.Errorf("%s probe %+v: want HTTPS /healthz or /readyz on port %s", what, p, port.Name)
		}
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort != port.Name {
		t.Errorf("Service ports %+v: want targetPort %s", svc.Spec.Ports, port.Name)
	}
}

// probe is a container probe.
type probe struct {
	HTTPGet struct {
		Path   string `yaml:"path"`
		Port   string `yaml:"port"`
		Scheme string `yaml:"scheme"`
	} `yaml:"httpGet"`
	PeriodSeconds int `yaml:"periodSeconds"`
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
