package identity

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Environment is what CurrentBinding reads from the process and the host.
// Every function may be replaced, so tests cover each branch of hostname
// normalization without a container or a Kubernetes pod.
type Environment struct {
	Getenv   func(key string) string
	Hostname func() (string, error)
	ReadFile func(path string) ([]byte, error)
	Getpid   func() int
}

// HostEnvironment returns the Environment of this process.
func HostEnvironment() Environment {
	return Environment{Getenv: os.Getenv, Hostname: os.Hostname, ReadFile: os.ReadFile, Getpid: os.Getpid}
}

// CurrentBinding returns the binding of this process for the policy at
// policyPath (made absolute and cleaned), with every field filled as far as
// the environment allows (DESIGN decision 9).
func CurrentBinding(policyPath string) Binding {
	return HostEnvironment().Binding(policyPath)
}

// Binding computes the binding in environment e.
func (e Environment) Binding(policyPath string) Binding {
	if abs, err := filepath.Abs(policyPath); err == nil {
		policyPath = abs
	}
	cid := e.ContainerID()
	return Binding{
		ProcessID:   e.Getpid(),
		PolicyPath:  filepath.Clean(policyPath),
		Hostname:    e.normalizedHostname(cid),
		ContainerID: cid,
		PodUID:      strings.TrimSpace(e.Getenv("POD_UID")),
	}
}

// NormalizedHostname implements §5.3.2 NORMALIZE_HOSTNAME, first match wins:
//
//  1. env POD_UID set          → "k8s:" + POD_UID
//  2. running in a container   → "container:" + first 12 characters of its id
//  3. hostname contains a dot  → lowercased hostname (FQDN)
//  4. resolv.conf search/domain → lowercased short name + "." + first domain
//  5. lowercased short name
//
// A trailing dot is removed. An unknown hostname is "localhost".
func (e Environment) NormalizedHostname() string {
	return e.normalizedHostname(e.ContainerID())
}

func (e Environment) normalizedHostname(containerID string) string {
	if uid := strings.TrimSpace(e.Getenv("POD_UID")); uid != "" {
		return "k8s:" + uid
	}
	if containerID != "" {
		return "container:" + containerID[:min(12, len(containerID))]
	}
	h, err := e.Hostname()
	h = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
	if err != nil || h == "" {
		h = "localhost"
	}
	if strings.Contains(h, ".") {
		return h
	}
	if d := e.searchDomain(); d != "" {
		return h + "." + d
	}
	return h
}

// searchDomain returns the first domain of the first "search" or "domain"
// line of /etc/resolv.conf.
func (e Environment) searchDomain() string {
	data, err := e.ReadFile("/etc/resolv.conf")
	if err != nil {
		return ""
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || (f[0] != "search" && f[0] != "domain") {
			continue
		}
		d := strings.TrimSuffix(strings.ToLower(f[1]), ".")
		if d != "" && !strings.HasPrefix(d, "#") && !strings.HasPrefix(d, ";") {
			return d
		}
	}
	return ""
}

// containerIDRE matches a 64-hex container id as Docker, containerd,
// CRI-O and Podman write it in cgroup paths and mount sources.
var containerIDRE = regexp.MustCompile(`(?:^|[/\-:_.])([0-9a-f]{64})(?:$|[/.\s])`)

// ContainerID returns the id of the container this process runs in, "" when
// it does not seem to run in one. It looks at /proc/self/cgroup and
// /proc/1/cpuset (cgroup v1 and v2 with systemd or cgroupfs drivers), then
// /proc/self/mountinfo (cgroup v2 with a private cgroup namespace, where
// the cgroup path is just "/": the id shows in the container's
// /etc/hostname or /etc/hosts mount source). Best effort (reference
// aip.md §6 #31).
func (e Environment) ContainerID() string {
	for _, p := range []string{"/proc/self/cgroup", "/proc/1/cpuset"} {
		if data, err := e.ReadFile(p); err == nil {
			if id := findContainerID(data); id != "" {
				return id
			}
		}
	}
	if data, err := e.ReadFile("/proc/self/mountinfo"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if !strings.Contains(line, "/containers/") && !strings.Contains(line, "/docker/") && !strings.Contains(line, "/sandboxes/") {
				continue
			}
			if id := findContainerID([]byte(line)); id != "" {
				return id
			}
		}
	}
	return ""
}

func findContainerID(data []byte) string {
	for _, line := range strings.Split(string(data), "\n") {
		if m := containerIDRE.FindStringSubmatch(line); m != nil {
			return m[1]
		}
	}
	return ""
}
