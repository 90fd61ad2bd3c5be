package integration

// docker-compose.yml and the Dockerfile cannot run here (no Docker engine),
// so this test reads them: the services and how they are wired, their health
// checks, the nginx configuration compose mounts (the very files the cluster
// test runs nginx with), and that nothing asks for sticky sessions.

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"siogo/internal/testutil"
)

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Build       any               `yaml:"build"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	Volumes     []string          `yaml:"volumes"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Healthcheck struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
	StopGracePeriod string `yaml:"stop_grace_period"`
	Ulimits         struct {
		Nofile struct {
			Soft int `yaml:"soft"`
			Hard int `yaml:"hard"`
		} `yaml:"nofile"`
	} `yaml:"ulimits"`
}

func (s composeService) checksHealthz() bool {
	return slices.ContainsFunc(s.Healthcheck.Test, func(a string) bool { return strings.HasSuffix(a, ":3000/healthz") })
}

// nginxDirectives returns the directives of an nginx configuration, one per
// entry, without comments.
func nginxDirectives(conf string) []string {
	var out []string
	for line := range strings.SplitSeq(conf, "\n") {
		line, _, _ = strings.Cut(line, "#")
		for part := range strings.SplitSeq(line, ";") {
			if f := strings.TrimSpace(strings.Trim(strings.TrimSpace(part), "{}")); f != "" {
				out = append(out, f)
			}
		}
	}
	return out
}

func TestComposeFile(t *testing.T) {
	root := testutil.RepoRoot(t)
	raw, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cf composeFile
	if err := yaml.Unmarshal(raw, &cf); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	var names []string
	for name := range cf.Services {
		names = append(names, name)
	}
	slices.Sort(names)
	if want := []string{"chat1", "chat2", "chat3", "nginx", "redis"}; !slices.Equal(names, want) {
		t.Fatalf("services %v, want %v", names, want)
	}

	redis := cf.Services["redis"]
	if !strings.HasPrefix(redis.Image, "redis:") || len(redis.Healthcheck.Test) == 0 {
		t.Errorf("redis: image %q, health check %v; want a redis image with a health check", redis.Image, redis.Healthcheck.Test)
	}

	chats := []string{"chat1", "chat2", "chat3"}
	nodeIDs := map[string]bool{}
	for _, name := range chats {
		s := cf.Services[name]
		if s.Build == nil || s.Image != cf.Services["chat1"].Image {
			t.Errorf("%s: build %v, image %q; want all nodes built from the Dockerfile as one image", name, s.Build, s.Image)
		}
		env := s.Environment
		if env["REDIS_URL"] != "redis://redis:6379/0" {
			t.Errorf("%s: REDIS_URL=%q, want the redis service", name, env["REDIS_URL"])
		}
		// Other nodes forward to the advertised address: the service name.
		if env["CHAT_ADVERTISE"] != name+":3000" || env["CHAT_ADDR"] != ":3000" {
			t.Errorf("%s: CHAT_ADVERTISE=%q CHAT_ADDR=%q, want %s:3000 and :3000", name, env["CHAT_ADVERTISE"], env["CHAT_ADDR"], name)
		}
		if id := env["CHAT_NODE_ID"]; id == "" || nodeIDs[id] {
			t.Errorf("%s: CHAT_NODE_ID=%q, want a distinct node id", name, id)
		}
		nodeIDs[env["CHAT_NODE_ID"]] = true
		if !s.checksHealthz() {
			t.Errorf("%s: health check %v, want /healthz", name, s.Healthcheck.Test)
		}
		if s.DependsOn["redis"].Condition != "service_healthy" {
			t.Errorf("%s: depends_on %v, want redis healthy", name, s.DependsOn)
		}
		if len(s.Ports) != 0 {
			t.Errorf("%s: publishes %v; only the balancer should be reachable", name, s.Ports)
		}
		// One descriptor per connection: the default (often 1024) would
		// cap a node far below what it can hold.
		if n := s.Ulimits.Nofile; n.Hard < 65536 || n.Soft != n.Hard {
			t.Errorf("%s: ulimits nofile %+v, want soft = hard >= 65536", name, n)
		}
	}

	nginx := cf.Services["nginx"]
	if !strings.HasPrefix(nginx.Image, "nginx:") {
		t.Errorf("nginx: image %q", nginx.Image)
	}
	if !slices.Equal(nginx.Ports, []string{"3000:3000"}) {
		t.Errorf("nginx: ports %v, want 3000:3000", nginx.Ports)
	}
	if !nginx.checksHealthz() {
		t.Errorf("nginx: health check %v, want /healthz through the balancer", nginx.Healthcheck.Test)
	}
	for _, name := range chats {
		if nginx.DependsOn[name].Condition != "service_healthy" {
			t.Errorf("nginx: depends_on %v, want %s healthy", nginx.DependsOn, name)
		}
	}
	mounts := map[string]string{}
	for _, v := range nginx.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 {
			t.Fatalf("nginx: volume %q", v)
		}
		mounts[parts[1]] = parts[0]
	}
	balancerPath := mounts["/etc/nginx/conf.d/default.conf"]
	nodesPath := mounts["/etc/nginx/chat-nodes.inc"]
	if balancerPath != "./deploy/nginx/balancer.conf" || nodesPath != "./deploy/nginx/nodes-compose.inc" {
		t.Fatalf("nginx mounts %v; want deploy/nginx/balancer.conf as conf.d/default.conf and deploy/nginx/nodes-compose.inc as chat-nodes.inc", mounts)
	}

	// The balancer: the same file the local cluster and its test run,
	// plain round robin over exactly the chat services.
	balancer, err := os.ReadFile(filepath.Join(root, balancerPath))
	if err != nil {
		t.Fatal(err)
	}
	directives := nginxDirectives(string(balancer))
	for _, d := range directives {
		name, _, _ := strings.Cut(d, " ")
		switch name {
		case "ip_hash", "hash", "sticky", "least_conn", "least_time", "random":
			t.Errorf("balancer.conf: %q: the balancer must be plain round robin, without affinity", d)
		}
	}
	for _, want := range []string{"upstream chat", "include chat-nodes.inc", "listen 3000", "proxy_pass http://chat",
		"proxy_set_header Upgrade $http_upgrade", "proxy_set_header Connection $connection_upgrade",
		`proxy_set_header X-Siogo-Forwarded-By ""`} {
		if !slices.Contains(directives, want) {
			t.Errorf("balancer.conf lacks %q", want)
		}
	}
	nodes, err := os.ReadFile(filepath.Join(root, nodesPath))
	if err != nil {
		t.Fatal(err)
	}
	servers := nginxDirectives(string(nodes))
	if want := []string{"server chat1:3000 fail_timeout=2s", "server chat2:3000 fail_timeout=2s", "server chat3:3000 fail_timeout=2s"}; !slices.Equal(servers, want) {
		t.Errorf("nodes-compose.inc: %v, want %v", servers, want)
	}

	// Nothing anywhere in the compose file asks for affinity either.
	var generic map[string]any
	if err := yaml.Unmarshal(raw, &generic); err != nil {
		t.Fatal(err)
	}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				walk(k)
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		case string:
			if l := strings.ToLower(v); strings.Contains(l, "sticky") || strings.Contains(l, "ip_hash") {
				t.Errorf("docker-compose.yml: %q asks for session affinity", v)
			}
		}
	}
	walk(generic)
}

func TestDockerfile(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	stages := regexp.MustCompile(`(?m)^FROM\s+(\S+)(?:\s+AS\s+(\S+))?`).FindAllStringSubmatch(text, -1)
	if len(stages) != 3 {
		t.Fatalf("Dockerfile has %d stages, want 3 (node, go, final)", len(stages))
	}
	if !strings.HasPrefix(stages[0][1], "node:") || !strings.HasPrefix(stages[1][1], "golang:") {
		t.Errorf("stages %v: want a node stage, then a Go stage", stages)
	}
	for _, want := range []string{"npm ci", "node_modules/socket.io-client/dist/socket.io.js", "internal/clientbundle/dist/", "CGO_ENABLED=0", "./cmd/chatserver"} {
		if !strings.Contains(text, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	final := text[strings.LastIndex(text, "\nFROM "):]
	user := regexp.MustCompile(`(?m)^USER\s+(\S+)`).FindStringSubmatch(final)
	if user == nil || user[1] == "root" || strings.HasPrefix(user[1], "0") {
		t.Errorf("the final stage runs as %v, want a non-root user", user)
	}
	if strings.Contains(final, "COPY . ") || strings.Contains(final, "node_modules") {
		t.Errorf("the final stage copies sources or node_modules; it should hold the binary only")
	}
}
