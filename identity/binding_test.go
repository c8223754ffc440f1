package identity_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/agentid/agentid/identity"
)

const cid = "3f4e5d6c7b8a99887766554433221100ffeeddccbbaa00112233445566778899"

// fakeEnv builds an Environment from maps, so each branch of §5.3.2 runs
// without a container or a pod.
func fakeEnv(env map[string]string, hostname string, files map[string]string) identity.Environment {
	return identity.Environment{
		Getenv:   func(k string) string { return env[k] },
		Hostname: func() (string, error) { return hostname, nil },
		ReadFile: func(p string) ([]byte, error) {
			if s, ok := files[p]; ok {
				return []byte(s), nil
			}
			return nil, os.ErrNotExist
		},
		Getpid: func() int { return 4242 },
	}
}

func TestNormalizedHostname(t *testing.T) {
	cases := []struct {
		name    string
		env     map[string]string
		host    string
		files   map[string]string
		want    string
		wantCID string
		wantPod string
	}{
		{name: "k8s pod uid first", env: map[string]string{"POD_UID": "550e8400-e29b-41d4-a716-446655440000"}, host: "Worker-1.Example.com",
			files: map[string]string{"/proc/self/cgroup": "0::/kubepods/burstable/pod550e8400/cri-containerd-" + cid + ".scope\n"},
			want:  "k8s:550e8400-e29b-41d4-a716-446655440000", wantCID: cid, wantPod: "550e8400-e29b-41d4-a716-446655440000"},
		{name: "docker cgroup v1", host: "3f4e5d6c7b8a",
			files: map[string]string{"/proc/self/cgroup": "12:cpu,cpuacct:/docker/" + cid + "\n11:memory:/docker/" + cid + "\n"},
			want:  "container:3f4e5d6c7b8a", wantCID: cid},
		{name: "systemd cgroup v2 docker scope", host: "h",
			files: map[string]string{"/proc/self/cgroup": "0::/system.slice/docker-" + cid + ".scope\n"},
			want:  "container:3f4e5d6c7b8a", wantCID: cid},
		{name: "cpuset", host: "h",
			files: map[string]string{"/proc/self/cgroup": "0::/\n", "/proc/1/cpuset": "/docker/" + cid + "\n"},
			want:  "container:3f4e5d6c7b8a", wantCID: cid},
		{name: "cgroup v2 namespace via mountinfo", host: "h",
			files: map[string]string{"/proc/self/cgroup": "0::/\n",
				"/proc/self/mountinfo": "1 2 0:1 / / rw - overlay overlay rw\n634 621 254:1 /var/lib/docker/containers/" + cid + "/hostname /etc/hostname rw - ext4 /dev/vda1 rw\n"},
			want: "container:3f4e5d6c7b8a", wantCID: cid},
		{name: "fqdn lowercased", host: "Build-Host.Example.COM.", files: map[string]string{"/proc/self/cgroup": "0::/user.slice/user-1000.slice/session-2.scope\n"},
			want: "build-host.example.com"},
		{name: "search domain", host: "Worker7",
			files: map[string]string{"/etc/resolv.conf": "# comment\nnameserver 10.0.0.1\nsearch Corp.Example.com. other.example\n"},
			want:  "worker7.corp.example.com"},
		{name: "domain line", host: "worker7", files: map[string]string{"/etc/resolv.conf": "domain lab.example\nsearch z.example\n"},
			want: "worker7.lab.example"},
		{name: "short name", host: "Worker7", files: map[string]string{"/etc/resolv.conf": "nameserver 1.1.1.1\n"}, want: "worker7"},
		{name: "no hostname", host: "", want: "localhost"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := fakeEnv(c.env, c.host, c.files)
			if got := e.NormalizedHostname(); got != c.want {
				t.Fatalf("hostname %q, want %q", got, c.want)
			}
			b := e.Binding("/etc/aip/../aip/policy.yaml")
			if b.Hostname != c.want || b.ContainerID != c.wantCID || b.PodUID != c.wantPod || b.ProcessID != 4242 || b.PolicyPath != "/etc/aip/policy.yaml" {
				t.Fatalf("binding %+v", b)
			}
		})
	}
}

func TestHostnameError(t *testing.T) {
	e := fakeEnv(nil, "", nil)
	e.Hostname = func() (string, error) { return "", errors.New("boom") }
	if got := e.NormalizedHostname(); got != "localhost" {
		t.Fatalf("got %q", got)
	}
}

func TestCurrentBindingOfThisProcess(t *testing.T) {
	b := identity.CurrentBinding("policy.yaml")
	if b.ProcessID != os.Getpid() || !strings.HasPrefix(b.PolicyPath, "/") || b.Hostname == "" {
		t.Fatalf("binding %+v", b)
	}
}
