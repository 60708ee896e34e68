// Driving the kopia CLI: every invocation gets the same private config, cache and log places
// (HOME may be unwritable in a pod), the S3 location from KM_S3_*, credentials only through
// the environment (never argv, so `ps` shows none), and its stderr relayed line by line with
// secrets scrubbed. A failure is classified from that stderr into the reasons the caller
// acts on (wrong password, missing repository, full disk).
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Failure is what kmmover reports as {"kind":"error"}.
type Failure struct {
	Reason  string
	Message string
}

func (f *Failure) Error() string { return f.Reason + ": " + f.Message }

func fail(reason, format string, a ...any) *Failure {
	return &Failure{Reason: reason, Message: scrub(fmt.Sprintf(format, a...))}
}

type Kopia struct {
	bin string
	dir string // config, cache and logs
	env []string
}

func NewKopia(work string) (*Kopia, error) {
	bin := ""
	if exe, err := os.Executable(); err == nil {
		if p := filepath.Join(filepath.Dir(exe), "kopia"); isExecutable(p) {
			bin = p
		}
	}
	if bin == "" {
		p, err := exec.LookPath("kopia")
		if err != nil {
			return nil, fail("kopia-failed", "kopia binary not found next to kmmover nor on PATH")
		}
		bin = p
	}
	dir := filepath.Join(work, "kopia")
	// One cache per repository location: kopia's cache holds decrypted-format blobs, and a
	// cache shared by two repositories fails with "message authentication failed".
	loc := sha256.Sum256([]byte(os.Getenv("KM_S3_ENDPOINT") + "\x00" + os.Getenv("KM_S3_BUCKET") +
		"\x00" + os.Getenv("KM_S3_PREFIX")))
	cache := filepath.Join(dir, "cache", hex.EncodeToString(loc[:8]))
	if err := os.MkdirAll(cache, 0o700); err != nil {
		return nil, err
	}
	env := append(os.Environ(),
		"KOPIA_CHECK_FOR_UPDATES=false",
		"KOPIA_PERSIST_CREDENTIALS_ON_CONNECT=false",
		"KOPIA_LOG_DIR="+filepath.Join(dir, "logs"),
		"KOPIA_CACHE_DIRECTORY="+cache,
		"XDG_CACHE_HOME="+filepath.Join(dir, "xdg-cache"),
		"XDG_CONFIG_HOME="+filepath.Join(dir, "xdg-config"),
	)
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		if limit := cgroupMemoryLimit(); limit > 0 {
			env = append(env, "GOMEMLIMIT="+strconv.FormatInt(limit/4, 10))
		}
	}
	return &Kopia{bin: bin, dir: dir, env: env}, nil
}

// cgroupMemoryLimit is the memory limit of kmmover's container (cgroup v2, then v1), 0 if
// none. kopia gets a quarter as its Go soft limit (GOMEMLIMIT): its heap otherwise grows to
// twice what it holds before a collection, and the container is OOM-killed long before kopia
// would run out (1,000,000 small files under a 1 GiB limit).
func cgroupMemoryLimit() int64 {
	for _, p := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err == nil && n > 0 && n < 1<<50 { // "max" and v1's huge "unlimited" fail or exceed
			return n
		}
	}
	return 0
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// Run runs `kopia args...` with the global flags, stdout into out (if not nil), and turns a
// non-zero exit into a classified *Failure carrying the tail of kopia's stderr.
func (k *Kopia) Run(ctx context.Context, out io.Writer, args ...string) error {
	global := []string{
		"--config-file=" + filepath.Join(k.dir, "repository.config"),
		"--no-progress", "--disable-file-logging", "--disable-content-log", "--no-auto-maintenance",
	}
	cmd := exec.CommandContext(ctx, k.bin, append(args, global...)...)
	cmd.Env, cmd.Stdout = k.env, out
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fail("kopia-failed", "start kopia: %v", err)
	}
	began := time.Now()
	lines := <-relay(stderr) // all of it before Wait, which closes the pipe
	err = cmd.Wait()
	fmt.Fprintf(os.Stderr, "kmmover: kopia %s: %.2fs\n", strings.Join(args[:min(2, len(args))], " "),
		time.Since(began).Seconds())
	if err == nil {
		return nil
	}
	return classify(args, lines, err)
}

// JSON runs kopia and decodes its stdout into v.
func (k *Kopia) JSON(ctx context.Context, v any, args ...string) error {
	var buf bytes.Buffer
	if err := k.Run(ctx, &buf, args...); err != nil {
		return err
	}
	if err := json.Unmarshal(buf.Bytes(), v); err != nil {
		return fail("kopia-failed", "kopia %s: unexpected output: %v", args[0], err)
	}
	return nil
}

// relay copies kopia's stderr to ours, scrubbed, and hands back its last lines at EOF.
func relay(r io.Reader) <-chan []string {
	done := make(chan []string, 1)
	go func() {
		var last []string
		br := bufio.NewReaderSize(r, 64<<10)
		for {
			line, err := br.ReadString('\n')
			if line != "" {
				line = scrub(line)
				os.Stderr.WriteString(line)
				if t := strings.TrimSpace(line); t != "" {
					last = append(last, t)
					if len(last) > 8 {
						last = last[1:]
					}
				}
			}
			if err != nil {
				break
			}
		}
		done <- last
	}()
	return done
}

func classify(args, lines []string, err error) *Failure {
	text := strings.Join(lines, "\n")
	low := strings.ToLower(text)
	reason := "kopia-failed"
	switch {
	case strings.Contains(low, "invalid repository password"):
		reason = "wrong-password"
	case strings.Contains(low, "repository not initialized"):
		reason = "repository-missing"
	case strings.Contains(low, "no space left on device"):
		reason = "no-space"
	}
	if text == "" {
		text = err.Error()
	}
	verb := strings.Join(args[:min(2, len(args))], " ")
	return fail(reason, "kopia %s: %s", verb, text)
}

// scrub removes every secret kmmover knows of from s.
func scrub(s string) string {
	for _, k := range []string{"KOPIA_PASSWORD", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID"} {
		if v := os.Getenv(k); len(v) >= 4 {
			s = strings.ReplaceAll(s, v, "<"+strings.ToLower(k)+">")
		}
	}
	return s
}

// storage is the `s3 ...` part of `repository connect|create`.
func storage() ([]string, error) {
	bucket, endpoint := os.Getenv("KM_S3_BUCKET"), os.Getenv("KM_S3_ENDPOINT")
	if bucket == "" || endpoint == "" {
		return nil, fail("kopia-failed", "KM_S3_BUCKET and KM_S3_ENDPOINT must be set")
	}
	for _, k := range []string{"KOPIA_PASSWORD", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
		if os.Getenv(k) == "" {
			return nil, fail("kopia-failed", "%s must be set", k)
		}
	}
	args := []string{"s3", "--bucket=" + bucket, "--endpoint=" + endpoint}
	if p := os.Getenv("KM_S3_PREFIX"); p != "" {
		args = append(args, "--prefix="+p)
	}
	if r := os.Getenv("KM_S3_REGION"); r != "" {
		args = append(args, "--region="+r)
	}
	if os.Getenv("KM_S3_DISABLE_TLS") == "1" {
		args = append(args, "--disable-tls")
	}
	return args, nil
}

// Connect connects to the repository as user@host (the snapshot sources' owner). With create,
// a missing repository is created.
func (k *Kopia) Connect(ctx context.Context, user, host string, create, readonly bool) (created bool, err error) {
	st, err := storage()
	if err != nil {
		return false, err
	}
	_ = os.Remove(filepath.Join(k.dir, "repository.config"))
	who := []string{
		"--override-username=" + user, "--override-hostname=" + host,
		"--content-cache-size-mb=" + cacheMB(), "--content-cache-size-limit-mb=" + cacheMB(),
		"--disable-repository-format-cache", // each kopia run reads the format as S3 has it now
	}
	connect := append(append([]string{"repository", "connect"}, st...), who...)
	if readonly {
		connect = append(connect, "--readonly")
	}
	err = k.Run(ctx, nil, connect...)
	var f *Failure
	if !create || !errors.As(err, &f) || f.Reason != "repository-missing" {
		return false, err
	}
	createArgs := append(append(append([]string{"repository", "create"}, st...), who...), Format...)
	if err = k.Run(ctx, nil, createArgs...); err == nil {
		return true, nil
	}
	// Another creator got there first (kopia's create is not atomic on S3: concurrent creators
	// race on kopia.repository and kopia.blobcfg, so callers should create once, alone): if
	// what it left opens, use it.
	time.Sleep(time.Second)
	if cerr := k.Run(ctx, nil, connect...); cerr == nil {
		return false, nil
	}
	return false, err
}

// Format is a new repository's: BLAKE3 hashes (kopia's benchmark here: 2.5 GB/s, BLAKE2B's
// default 0.8 GB/s) and fixed 2 MiB chunks. Content-defined chunking (buzhash) was a quarter
// of kopia's CPU in a backup (profiled on the host: 1 GiB mixed, 7.2-7.9 s -> 7.1 s); volumes
// change in place (databases, images) or at the end (logs), where fixed chunks re-upload just
// the blocks touched (bench/volume_data.py, 10 MiB overwritten: 2.1x the bytes changed went
// up with DYNAMIC-2M-BUZHASH, 1.4x with FIXED-2M, 1.1x with FIXED-1M); bytes inserted
// mid-file re-upload the rest of that file. 1 MiB chunks doubled the contents a restore reads
// one by one and restored 15-25% slower. Reading more files at once than kopia's default (one
// per CPU) made the backup faster still but interleaved the files' chunks in the packs, and
// the restore slower by more. Encryption stays kopia's and Velero's AES256-GCM-HMAC-SHA256.
// Every kopia run derives the format blob's key from the password: kopia's default scrypt
// (64 MiB, 0.25 s a run, 108 MB of RSS) is replaced by its other algorithm, PBKDF2-SHA256 at
// 600,000 rounds (0.15 s, 43 MB; `kopia repository status`, measured here); a backup or
// restore makes 4 to 10 runs, one after another. Either stretches a password a person chose;
// the mover's is 32 random or key-derived bytes, which no stretching makes stronger.
// A repository keeps the format it was created with.
var Format = []string{"--block-hash=BLAKE3-256-128", "--object-splitter=FIXED-2M",
	"--format-block-key-derivation-algorithm=pbkdf2-sha256-600000"}

// SnapshotInfo is the part of a kopia snapshot manifest kmmover reads.
type SnapshotInfo struct {
	ID        string `json:"id"`
	RootEntry struct {
		Summary struct {
			Size  int64 `json:"size"`
			Files int64 `json:"files"`
			Dirs  int64 `json:"dirs"`
		} `json:"summ"`
	} `json:"rootEntry"`
}

// Snapshot looks a snapshot up by its manifest ID; an unknown ID is "snapshot-missing".
func (k *Kopia) Snapshot(ctx context.Context, id string) (*SnapshotInfo, error) {
	var buf bytes.Buffer
	err := k.Run(ctx, &buf, "manifest", "show", id)
	var f *Failure
	if errors.As(err, &f) && f.Reason == "kopia-failed" && strings.Contains(f.Message, "not found") {
		return nil, fail("snapshot-missing", "no snapshot %q in the repository", id)
	} else if err != nil {
		return nil, err
	}
	var body, labels strings.Builder
	for _, line := range strings.Split(buf.String(), "\n") {
		if strings.HasPrefix(line, "// label ") {
			labels.WriteString(line)
		} else if !strings.HasPrefix(line, "//") {
			body.WriteString(line + "\n")
		}
	}
	if !strings.Contains(labels.String(), "type:snapshot") {
		return nil, fail("snapshot-missing", "%q is not a snapshot", id)
	}
	var s SnapshotInfo
	if err := json.Unmarshal([]byte(body.String()), &s); err != nil {
		return nil, fail("kopia-failed", "snapshot %s: unexpected manifest: %v", id, err)
	}
	s.ID = id
	return &s, nil
}

// Blobs maps the repository's blob IDs that start with prefix to their sizes.
func (k *Kopia) Blobs(ctx context.Context, prefix string) (map[string]int64, error) {
	var list []struct {
		ID     string `json:"id"`
		Length int64  `json:"length"`
	}
	args := []string{"blob", "list", "--json"}
	if prefix != "" {
		args = append(args, "--prefix="+prefix)
	}
	if err := k.JSON(ctx, &list, args...); err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(list))
	for _, b := range list {
		out[b.ID] = b.Length
	}
	return out, nil
}

// cacheMB caps kopia's content cache (soft and hard limit; kopia's default is 5 GB and a
// restore caches every content it reads): /tmp in a pod is the node's disk, and a mover reads
// each content about once. KM_KOPIA_CONTENT_CACHE_MB overrides it; 0 makes kopia v0.23.1 panic.
// A restore raises it to hold the packs it prefetches (prefetch.go).
func cacheMB() string {
	if v := os.Getenv("KM_KOPIA_CONTENT_CACHE_MB"); v != "" {
		return v
	}
	return "256"
}

// baseCacheMB is cacheMB as a number.
func baseCacheMB() (int64, error) {
	n, err := strconv.ParseInt(cacheMB(), 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("KM_KOPIA_CONTENT_CACHE_MB=%q is not a positive number", cacheMB())
	}
	return n, nil
}
