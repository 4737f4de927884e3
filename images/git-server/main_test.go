package main

import (
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// configMapSeed lays out dir as kubelet mounts a ConfigMap whose items have the paths
// <repo>/<file>: the files in a timestamped directory, ..data linking to it, and one link
// per top-level entry through ..data.
func configMapSeed(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	stamp := filepath.Join(dir, "..2026_01_01_00_00_00.000000001")
	tops := map[string]bool{}
	for path, content := range files {
		full := filepath.Join(stamp, path)
		must(t, os.MkdirAll(filepath.Dir(full), 0o755))
		must(t, os.WriteFile(full, []byte(content), 0o644))
		tops[strings.SplitN(path, "/", 2)[0]] = true
	}
	must(t, os.Symlink(filepath.Base(stamp), filepath.Join(dir, "..data")))
	for top := range tops {
		must(t, os.Symlink(filepath.Join("..data", top), filepath.Join(dir, top)))
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// gitCmd runs git as a client, with no user or system configuration.
func gitCmd(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_TERMINAL_PROMPT=0", "GIT_AUTHOR_NAME=Learner", "GIT_AUTHOR_EMAIL=learner@example.com",
		"GIT_COMMITTER_NAME=Learner", "GIT_COMMITTER_EMAIL=learner@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func gitPath(t *testing.T) string {
	git, err := exec.LookPath("git")
	if err != nil {
		t.Skip("no git binary")
	}
	return git
}

const deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: shop\n"

func TestSeedCloneCommitPush(t *testing.T) {
	git := gitPath(t)
	seedDir, root := t.TempDir(), t.TempDir()
	configMapSeed(t, seedDir, map[string]string{
		"shop/apps/shop/deployment.yaml": deployment,
		"shop/README.md":                 "# shop\n",
	})
	must(t, seed(git, seedDir, root))
	bare := filepath.Join(root, "shop.git")
	seeded := gitCmd(t, bare, "rev-parse", "main")
	if got := gitCmd(t, bare, "rev-parse", "start"); got != seeded {
		t.Fatalf("tag start is %s, main %s", got, seeded)
	}
	if got := gitCmd(t, bare, "symbolic-ref", "HEAD"); got != "refs/heads/main" {
		t.Fatalf("HEAD is %s", got)
	}
	if got := gitCmd(t, bare, "log", "--format=%an <%ae>|%cn <%ce>|%s|%cI", "main"); got !=
		"Roadlab <lab@roadlab.dev>|Roadlab <lab@roadlab.dev>|The lab's starting point|2026-01-01T00:00:00+00:00" {
		t.Fatalf("history: %s", got)
	}
	if got := gitCmd(t, bare, "ls-tree", "-r", "--name-only", "main"); got != "README.md\napps/shop/deployment.yaml" {
		t.Fatalf("tree: %q (no ..data entries expected)", got)
	}
	// Reproducible: the same seed elsewhere gives the same commit.
	again := t.TempDir()
	must(t, seed(git, seedDir, again))
	if got := gitCmd(t, again, "--git-dir=shop.git", "rev-parse", "main"); got != seeded {
		t.Fatalf("reseeding gave %s, first %s", got, seeded)
	}

	srv := httptest.NewServer(newHandler(git, root))
	defer srv.Close()
	work := t.TempDir()
	gitCmd(t, work, "clone", "--quiet", srv.URL+"/shop.git", "shop")
	clone := filepath.Join(work, "shop")
	if data, err := os.ReadFile(filepath.Join(clone, "apps/shop/deployment.yaml")); err != nil || string(data) != deployment {
		t.Fatalf("cloned deployment.yaml: %q %v", data, err)
	}
	// A blob over git's 1 MiB http.postBuffer makes the push a chunked request (no
	// CONTENT_LENGTH for the CGI program).
	big := make([]byte, 2<<20)
	rand.Read(big)
	must(t, os.WriteFile(filepath.Join(clone, "apps/shop/blob.bin"), big, 0o644))
	must(t, os.WriteFile(filepath.Join(clone, "apps/shop/deployment.yaml"), []byte(deployment+"spec:\n  replicas: 2\n"), 0o644))
	gitCmd(t, clone, "add", "-A")
	gitCmd(t, clone, "commit", "--quiet", "-m", "two replicas")
	pushed := gitCmd(t, clone, "rev-parse", "HEAD")
	gitCmd(t, clone, "push", "--quiet", "origin", "main")
	if got := gitCmd(t, bare, "rev-parse", "main"); got != pushed {
		t.Fatalf("after push the server's main is %s, want %s", got, pushed)
	}
	gitCmd(t, work, "clone", "--quiet", srv.URL+"/shop.git", "second")
	if got := gitCmd(t, filepath.Join(work, "second"), "rev-parse", "HEAD"); got != pushed {
		t.Fatalf("a new clone has %s, want %s", got, pushed)
	}
	if got := gitCmd(t, filepath.Join(work, "second"), "rev-parse", "start"); got != seeded {
		t.Fatalf("a new clone's start is %s, want %s", got, seeded)
	}

	// A restart seeds again: the pushed repo stays as it is.
	must(t, seed(git, seedDir, root))
	if got := gitCmd(t, bare, "rev-parse", "main"); got != pushed {
		t.Fatalf("after a second seeding main is %s, want %s", got, pushed)
	}
	// An unknown repo is a 404, not a server error.
	resp, err := http.Get(srv.URL + "/nope.git/info/refs?service=git-upload-pack")
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown repo: %d", resp.StatusCode)
	}
}

func TestHealthz(t *testing.T) {
	rec := httptest.NewRecorder()
	newHandler("git", t.TempDir()).ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("healthz: %d", rec.Code)
	}
}

func TestSeedRefusesBadNames(t *testing.T) {
	git := gitPath(t)
	for _, name := range []string{"Shop", "-shop", "sh_op", strings.Repeat("a", 64)} {
		seedDir, root := t.TempDir(), t.TempDir()
		configMapSeed(t, seedDir, map[string]string{name + "/a.yaml": "a: 1\n"})
		if err := seed(git, seedDir, root); err == nil {
			t.Errorf("%q was seeded", name)
		}
		if entries, _ := os.ReadDir(root); len(entries) != 0 {
			t.Errorf("%q left %v", name, entries)
		}
	}
}

func TestSeedWithoutSeedDir(t *testing.T) {
	root := t.TempDir()
	must(t, seed(gitPath(t), filepath.Join(t.TempDir(), "missing"), root))
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Fatalf("unexpected entries %v", entries)
	}
}
