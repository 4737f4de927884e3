// Command git-server is the GitOps lab's in-cluster Git server: Debian's `git http-backend`
// (Git's own smart HTTP server, a CGI program) run by the standard library's net/http/cgi,
// with each lab repository seeded from a ConfigMap at start.
//
//	http://<host>:8080/<repo>.git   clone, fetch and anonymous push (smart HTTP)
//	GET /healthz                    200 (a readiness probe)
//
// Git does all the Git work; written here is only what no library or git command does:
// a CGI host (http-backend has no server of its own; net/http/cgi runs it, and needs a
// small shim for chunked pushes), the request log, and seeding, because a ConfigMap volume is a symlink farm (..data) and a lab's
// starting point must be one reproducible commit, made atomically and never over a repo
// the learner has pushed to.
//
// Anonymous push is on: only the lab's pods, the operator's checks and Flux can reach the
// server (NetworkPolicies), and the learner through kubectl port-forward.
//
// Environment: GIT_PROJECT_ROOT (/srv/git), SEED_DIR (/seed), LISTEN_ADDR (:8080).
package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// seedDate makes a seeded commit reproducible: the same tree gives the same commit id.
const seedDate = "2026-01-01T00:00:00Z"

var repoName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

func main() {
	log.SetOutput(os.Stdout)
	log.SetFlags(log.LstdFlags | log.LUTC)
	root := env("GIT_PROJECT_ROOT", "/srv/git")
	git, err := exec.LookPath("git")
	if err != nil {
		log.Fatalf("git-server: %v", err)
	}
	if err := seed(git, env("SEED_DIR", "/seed"), root); err != nil {
		log.Fatalf("git-server: seeding: %v", err)
	}
	addr := env("LISTEN_ADDR", ":8080")
	srv := &http.Server{Addr: addr, Handler: newHandler(git, root), ReadHeaderTimeout: 30 * time.Second}
	log.Printf("git-server: serving %s on %s", root, addr)
	log.Fatal(srv.ListenAndServe())
}

func env(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

// newHandler serves /healthz and hands every other request to `git http-backend`.
func newHandler(git, root string) http.Handler {
	backend := &cgi.Handler{
		Path: git,
		Args: []string{"http-backend"},
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"},
		// HOME for git's config lookup (/tmp in the image); no system-wide config applies.
		InheritEnv: []string{"HOME", "GIT_CONFIG_NOSYSTEM"},
		Stderr:     os.Stderr,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.Handle("/", unchunked(backend))
	return logRequests(mux)
}

// unchunked lets a chunked request body through to the CGI program, which net/http/cgi
// refuses (400) although git sends every push bigger than its http.postBuffer (1 MiB)
// chunked: with Transfer-Encoding dropped the body still streams to the program's stdin,
// with no CONTENT_LENGTH, and git http-backend then reads it to EOF (as behind Apache).
func unchunked(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TransferEncoding) > 0 {
			r = r.Clone(r.Context())
			r.TransferEncoding = nil
			r.ContentLength = -1
		}
		next.ServeHTTP(w, r)
	})
}

// statusWriter remembers the status for the request log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the real writer (Flush).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		log.Printf("%s %s %d %s", r.Method, r.URL.RequestURI(), sw.status, time.Since(start).Round(time.Millisecond))
	})
}

// seed makes root/<repo>.git for each directory seedDir/<repo>/ that has no repo yet: a bare
// repo whose main has one commit of that tree, tagged `start`, accepting anonymous pushes.
// Entries beginning with "." (a ConfigMap volume's ..data and timestamped directories) are
// not repos. A missing seedDir seeds nothing.
func seed(git, seedDir, root string) error {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	// Leftovers of a start that died while seeding.
	stale, _ := filepath.Glob(filepath.Join(root, ".seed-*"))
	for _, dir := range stale {
		os.RemoveAll(dir)
	}
	entries, err := os.ReadDir(seedDir)
	if errors.Is(err, fs.ErrNotExist) {
		log.Printf("git-server: no %s, nothing to seed", seedDir)
		return nil
	} else if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		src := filepath.Join(seedDir, name)
		info, err := os.Stat(src) // follows the ConfigMap's symlink into ..data
		if err != nil {
			return err
		}
		if !info.IsDir() {
			return fmt.Errorf("%s is not a directory (a repo's files go under %s/<repo>/)", src, seedDir)
		}
		if !repoName.MatchString(name) {
			return fmt.Errorf("refusing repo name %q: not [a-z0-9][a-z0-9-]{0,62}", name)
		}
		dst := filepath.Join(root, name+".git")
		if _, err := os.Lstat(dst); err == nil {
			log.Printf("git-server: %s exists, kept as it is", dst)
			continue
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := seedRepo(git, src, root, dst); err != nil {
			return fmt.Errorf("seeding %s: %w", name, err)
		}
		log.Printf("git-server: seeded %s from %s", dst, src)
	}
	return nil
}

// seedRepo builds the repo in a temporary directory beside dst and renames it into place,
// so a half-made repo is never served and an existing one is never replaced.
func seedRepo(git, src, root, dst string) error {
	work, err := os.MkdirTemp("", "git-server-seed-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	tree := filepath.Join(work, "tree")
	if err := copyTree(src, tree, 0); err != nil {
		return err
	}
	bare, err := os.MkdirTemp(root, ".seed-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(bare) // gone after the rename
	run := func(args ...string) error {
		cmd := exec.Command(git, args...)
		if args[0] != "init" {
			cmd.Args = append([]string{git, "--git-dir=" + bare, "--work-tree=" + tree}, args...)
		}
		cmd.Env = append(os.Environ(),
			"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", // no host settings (gpgsign, hooks)
			"GIT_AUTHOR_NAME=Roadlab", "GIT_AUTHOR_EMAIL=lab@roadlab.dev", "GIT_AUTHOR_DATE="+seedDate,
			"GIT_COMMITTER_NAME=Roadlab", "GIT_COMMITTER_EMAIL=lab@roadlab.dev", "GIT_COMMITTER_DATE="+seedDate)
		cmd.Dir = tree
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
		}
		return nil
	}
	for _, args := range [][]string{
		{"init", "--quiet", "--bare", "--initial-branch=main", bare},
		{"config", "http.receivepack", "true"},
		{"add", "--all", "."},
		{"commit", "--quiet", "--allow-empty", "--no-verify", "-m", "The lab's starting point"},
		{"tag", "start"},
	} {
		if err := run(args...); err != nil {
			return err
		}
	}
	// Keep the bare repo's index out of it: the work tree was only the seed's copy.
	os.Remove(filepath.Join(bare, "index"))
	if err := os.Chmod(bare, 0o755); err != nil {
		return err
	}
	return os.Rename(bare, dst)
}

// copyTree copies src to dst by content, following symlinks (a ConfigMap volume's files are
// links into ..data) and skipping ".."-prefixed entries. Only the executable bit is kept,
// as Git records nothing else.
func copyTree(src, dst string, depth int) error {
	if depth > 32 {
		return fmt.Errorf("%s: too deep (a symlink loop?)", src)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "..") || e.Name() == ".git" {
			continue
		}
		from, to := filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())
		info, err := os.Stat(from)
		if err != nil {
			return err
		}
		switch {
		case info.IsDir():
			err = copyTree(from, to, depth+1)
		case info.Mode().IsRegular():
			var data []byte
			if data, err = os.ReadFile(from); err == nil {
				mode := fs.FileMode(0o644)
				if info.Mode()&0o111 != 0 {
					mode = 0o755
				}
				err = os.WriteFile(to, data, mode)
			}
		default:
			err = fmt.Errorf("%s: not a file or directory", from)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
