// Command kmmover moves one volume's data for kube-migrate: it runs in a pod next to the
// volume, drives kopia (snapshots to an encrypted, deduplicated repository on S3) and writes
// a file manifest of its own, so a restore can be verified without trusting the tool that
// made it. It speaks JSON lines on stdout, which is all the Python side reads:
//
//	kmmover backup   --path DIR --user U --host H [--create] [--manifest-only]
//	kmmover restore  --path DIR --snapshot ID [--parallel N] [--delta [--verify] [--manifest-snapshot ID]]
//	kmmover verify   --path DIR --manifest-snapshot ID [--max-diffs N]
//	kmmover manifest --path DIR
//	kmmover standby  --path DIR [--for backup --user U --host H | --for restore]
//	                 (idle until SIGTERM; the verb is exec'd into its pod later: standby.go)
//	kmmover forget   --snapshots ID,ID...   (deletes them, then kopia's maintenance: forget.go)
//
// Progress lines ({"kind":"progress","bytes":N,"files":N}, at most one per 2 s), then one
// {"kind":"result",...,"peakRssBytes":N} and exit 0, or {"kind":"error","reason":R,"message":M}
// and exit 2.
// kopia's stderr (secrets scrubbed) and kmmover's own diagnostics go to stderr.
//
// Configuration comes from the environment: KOPIA_PASSWORD, KM_S3_BUCKET, KM_S3_PREFIX,
// KM_S3_ENDPOINT (host:port), KM_S3_REGION, KM_S3_DISABLE_TLS=1, AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY; KM_WORK_DIR (default /tmp) holds kopia/ (config, cache) and
// manifest/.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

var (
	stdoutMu sync.Mutex
	stdout   = func() *json.Encoder {
		e := json.NewEncoder(os.Stdout)
		e.SetEscapeHTML(false)
		return e
	}()
)

// emit writes one JSON line to stdout.
func emit(v any) {
	stdoutMu.Lock()
	defer stdoutMu.Unlock()
	_ = stdout.Encode(v)
}

type errorLine struct {
	Kind    string `json:"kind"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

type progress struct {
	Kind       string `json:"kind"`
	Bytes      int64  `json:"bytes"`
	Files      int64  `json:"files"`
	TotalBytes int64  `json:"totalBytes,omitempty"` // once known: the ETA's denominator
}

// ticker emits a progress line from sample() and total() (0 while unknown) every 2 s
// (KM_PROGRESS_SECONDS overrides it) until the returned stop is called; after stop returns no
// further line is written.
func ticker(sample func() (bytes, files int64), total func() int64) (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		every := 2 * time.Second
		if v, err := strconv.ParseFloat(os.Getenv("KM_PROGRESS_SECONDS"), 64); err == nil && v > 0 {
			every = time.Duration(v * float64(time.Second))
		}
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				b, f := sample()
				emit(progress{"progress", b, f, total()})
			}
		}
	}()
	return func() { close(quit); <-done }
}

// treeBytes is the size of the regular files under root: a stat-only walk, far ahead of the
// hashing one, so progress has a total early. Errors only make it smaller.
func treeBytes(root string) int64 {
	var n int64
	_ = filepath.WalkDir(root, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, ierr := d.Info(); ierr == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

func workDir() string {
	if d := os.Getenv("KM_WORK_DIR"); d != "" {
		return d
	}
	return "/tmp"
}

func main() {
	if len(os.Args) < 2 {
		usageExit("usage: kmmover backup|restore|verify|manifest|standby|forget ...")
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	start := time.Now()
	var (
		result any
		err    error
	)
	cmd, args := os.Args[1], os.Args[2:]
	switch cmd {
	case "backup":
		result, err = backup(ctx, args, start)
	case "restore":
		result, err = restore(ctx, args, start)
	case "verify":
		result, err = verify(ctx, args, start)
	case "manifest":
		err = manifest(args)
	case "standby":
		err = standby(ctx, args)
	case "forget":
		result, err = forget(ctx, args, start)
	default:
		usageExit("kmmover: unknown command " + cmd)
	}
	if err != nil {
		var f *Failure
		if !errors.As(err, &f) {
			f = fail(localReason(err), "%v", err)
		}
		emit(errorLine{"error", f.Reason, f.Message})
		os.Exit(2)
	}
	if result != nil {
		emit(result)
	}
}

func localReason(err error) string {
	if errors.Is(err, syscall.ENOSPC) {
		return "no-space"
	}
	return "kopia-failed"
}

func usageExit(msg string) {
	emit(errorLine{"error", "kopia-failed", msg})
	os.Exit(2)
}

// parse parses flags; a usage error is reported like any other failure.
func parse(fs *flag.FlagSet, args []string, required ...string) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return fail("kopia-failed", "usage: kmmover %s: %v", fs.Name(), err)
	}
	if fs.NArg() > 0 {
		return fail("kopia-failed", "usage: kmmover %s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	for _, name := range required {
		if fs.Lookup(name).Value.String() == "" {
			return fail("kopia-failed", "usage: kmmover %s: --%s is required", fs.Name(), name)
		}
	}
	return nil
}

func absDir(p string) (string, error) {
	a, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(a)
	if err != nil {
		return "", err
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("%s is not a directory", a)
	}
	return a, nil
}

// manifest prints the manifest of --path as JSON lines (tests and debugging).
func manifest(args []string) error {
	fs := flag.NewFlagSet("manifest", flag.ContinueOnError)
	path := fs.String("path", "", "directory")
	if err := parse(fs, args, "path"); err != nil {
		return err
	}
	root, err := absDir(*path)
	if err != nil {
		return err
	}
	stdoutMu.Lock()
	defer stdoutMu.Unlock()
	_, err = WriteManifest(root, os.Stdout, &Counters{})
	return err
}

// WriteManifest writes the manifest of root to w as JSON lines; it returns the entry count.
func WriteManifest(root string, w io.Writer, c *Counters, known ...Known) (int64, error) {
	bw := bufio.NewWriterSize(w, 256<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	var (
		walkErr, encErr error
		n               int64
	)
	for e := range Walk(root, c, &walkErr, known...) {
		if encErr == nil {
			encErr = enc.Encode(e)
			n++
		}
	}
	if walkErr != nil {
		return n, walkErr
	}
	if encErr != nil {
		return n, encErr
	}
	return n, bw.Flush()
}
