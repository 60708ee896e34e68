// The three kopia-backed commands. backup snapshots the volume and, concurrently, writes its
// manifest, then snapshots the manifest as a source of its own so verify can fetch it later
// from any pod; restore and verify only ever connect read-only.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// ManifestSource is the path of the manifest snapshots' source (user@host:/tmp/manifest),
// whatever KM_WORK_DIR is, so a volume's manifests form one chain too.
const ManifestSource = "/tmp/manifest"

// Checkpoint is how often a snapshot flushes its content index: kopia keeps the index of
// what it has written in memory until then (its default, 45 min, held 1 GB for a volume of
// 1,000,000 small files: 785 MB at 15 s, 326 MB at 10 s with the memory limit below).
const Checkpoint = "10s"

// Pin keeps kmmover's snapshots out of kopia's retention (keep-latest 10 and so on):
// deleting snapshots is the caller's decision.
const Pin = "kube-migrate"

type backupResult struct {
	Kind               string  `json:"kind"`
	SnapshotID         string  `json:"snapshotID"`
	ManifestSnapshotID string  `json:"manifestSnapshotID"`
	TotalBytes         int64   `json:"totalBytes"`
	Files              int64   `json:"files"`
	Dirs               int64   `json:"dirs"`
	IncrementalBytes   int64   `json:"incrementalBytes"`
	Seconds            float64 `json:"seconds"`
	PeakRSSBytes       int64   `json:"peakRssBytes"`
	// files whose manifest hash came from the previous backup (unchanged: not read)
	ReusedHashes int64 `json:"reusedHashes"`
}

func backup(ctx context.Context, args []string, start time.Time) (any, error) {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	path := fs.String("path", "", "directory to back up")
	user := fs.String("user", "", "snapshot source user")
	host := fs.String("host", "", "snapshot source host")
	create := fs.Bool("create", false, "create the repository if it is missing")
	manifestOnly := fs.Bool("manifest-only", false,
		"snapshot the file manifest only (the data stays in a kept CSI snapshot)")
	if err := parse(fs, args, "path", "user", "host"); err != nil {
		return nil, err
	}
	root, err := absDir(*path)
	if err != nil {
		return nil, err
	}
	work := workDir()
	k, err := NewKopia(work)
	if err != nil {
		return nil, err
	}
	ready := takePrepared("backup", *user, *host) // by a standby (standby.go): connected
	var before map[string]int64
	if ready != nil {
		before = ready.BlobsBefore
	} else {
		created, err := k.Connect(ctx, *user, *host, *create, false)
		if err != nil {
			return nil, err
		}
		if created { // a volume copy keeps everything: no cache-dir or .kopiaignore exclusions
			if err := k.Run(ctx, nil, "policy", "set", "--global", "--ignore-cache-dirs=false",
				"--remove-dot-ignore=.kopiaignore"); err != nil {
				return nil, err
			}
		}
		if before, err = k.Blobs(ctx, ""); err != nil {
			return nil, err
		}
	}
	mdir := filepath.Join(work, "manifest")
	if err := os.RemoveAll(mdir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(mdir, 0o700); err != nil {
		return nil, err
	}
	var c Counters
	var total atomic.Int64
	go func() { total.Store(treeBytes(root)) }()
	stop := ticker(func() (int64, int64) { return c.Bytes.Load(), c.Files.Load() }, total.Load)
	mdone := make(chan error, 1)
	prev := &prevHashes{}
	go func() {
		var closePrev func()
		if ready != nil {
			closePrev = openManifest(ready.PrevManifest, prev)
		} else {
			closePrev = previousManifest(ctx, k, *user, *host, filepath.Join(work, "prev-manifest"), prev)
		}
		defer closePrev()
		var known []Known
		if prev.next != nil {
			known = []Known{prev.known}
		}
		mdone <- writeManifestFile(root, filepath.Join(mdir, "manifest.jsonl"), &c, known...)
	}()
	var snap SnapshotInfo
	if *manifestOnly {
		snap.ID = "none"
	} else {
		err = k.JSON(ctx, &snap, "snapshot", "create", root, "--json", "--pin="+Pin, "--checkpoint-interval="+Checkpoint,
			"--tags=kube-migrate:data", "--description=kube-migrate volume data")
	}
	if err != nil {
		stop()
		return nil, err
	}
	if err := <-mdone; err != nil {
		stop()
		return nil, err
	}
	stop()
	// the blobs listed while the manifest's snapshot is written: its blobs may be counted as
	// added or not, the data's always are
	type listed struct {
		blobs map[string]int64
		err   error
	}
	afterc := make(chan listed, 1)
	go func() {
		b, err := k.Blobs(ctx, "")
		afterc <- listed{b, err}
	}()
	var msnap SnapshotInfo
	err = k.JSON(ctx, &msnap, "snapshot", "create", mdir, "--json", "--pin="+Pin,
		"--override-source="+*user+"@"+*host+":"+ManifestSource,
		"--tags=kube-migrate:manifest", "--tags=data-snapshot:"+snap.ID,
		"--description=kube-migrate file manifest of snapshot "+snap.ID)
	after := <-afterc
	if err == nil {
		err = after.err
	}
	if err != nil {
		return nil, err
	}
	var added int64
	for id, n := range after.blobs {
		if _, ok := before[id]; !ok {
			added += n
		}
	}
	if *manifestOnly {
		if err := k.Run(ctx, io.Discard, "manifest", "show", msnap.ID); err != nil {
			return nil, fail("kopia-failed", "snapshot %s unreadable after backup: %v", msnap.ID, err)
		}
		return backupResult{"result", "", msnap.ID, c.Bytes.Load(), c.Files.Load(), c.Dirs.Load(),
			added, since(start), peakRSS(), prev.reused.Load()}, nil
	}
	// Read both back in a fresh kopia run: a repository created concurrently by another
	// mover (kopia's create is not atomic on S3) would otherwise lose them silently. One that
	// held this volume's previous manifest was not being created.
	if prev.next == nil {
		if err := k.Run(ctx, io.Discard, "manifest", "show", snap.ID, msnap.ID); err != nil {
			return nil, fail("kopia-failed", "snapshots %s and %s unreadable after backup "+
				"(repository created concurrently by another mover?): %v", snap.ID, msnap.ID, err)
		}
	}
	s := snap.RootEntry.Summary
	dirs := max(0, s.Dirs-1) // kopia counts the root, the manifest does not
	return backupResult{"result", snap.ID, msnap.ID, s.Size, s.Files, dirs, added, since(start),
		peakRSS(), prev.reused.Load()}, nil
}

// previousManifest opens the newest manifest of this volume (user@host), whose hashes the
// new one reuses for unchanged files; none (a first backup, any error) reads every file.
func previousManifest(ctx context.Context, k *Kopia, user, host, dir string, p *prevHashes) func() {
	var list []struct {
		ID string `json:"id"`
	}
	err := k.JSON(ctx, &list, "snapshot", "list", user+"@"+host+":"+ManifestSource, "--json")
	if err != nil || len(list) == 0 {
		return func() {}
	}
	f, err := fetchManifest(ctx, k, list[len(list)-1].ID, dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kmmover: every file read: previous manifest: %v\n", err)
		return func() {}
	}
	p.next = entries(f, "previous manifest")
	return func() { f.Close() }
}

// openManifest opens a previous manifest fetched earlier (by a standby); "" or an unreadable
// file leaves p empty: every file is read.
func openManifest(path string, p *prevHashes) func() {
	if path == "" {
		return func() {}
	}
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kmmover: every file read: previous manifest: %v\n", err)
		return func() {}
	}
	p.next = entries(f, "previous manifest")
	return func() { f.Close() }
}

func writeManifestFile(root, path string, c *Counters, known ...Known) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := WriteManifest(root, f, c, known...); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

type restoreResult struct {
	Kind         string  `json:"kind"`
	Bytes        int64   `json:"bytes"`
	Files        int64   `json:"files"`
	Seconds      float64 `json:"seconds"`
	PeakRSSBytes int64   `json:"peakRssBytes"`
}

func restore(ctx context.Context, args []string, start time.Time) (any, error) {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	path := fs.String("path", "", "directory to restore into")
	id := fs.String("snapshot", "", "snapshot ID")
	parallel := fs.Int("parallel", defaultParallel(), "files restored in parallel")
	delta := fs.Bool("delta", false,
		"the directory holds an earlier copy: write only what differs from the snapshot")
	verifyAfter := fs.Bool("verify", false,
		"with --delta: check the directory against the snapshot's manifest afterwards")
	mid := fs.String("manifest-snapshot", "",
		"with --delta: the snapshot's manifest snapshot (else looked up by its tag)")
	if err := parse(fs, args, "path", "snapshot"); err != nil {
		return nil, err
	}
	k, err := NewKopia(workDir())
	if err != nil {
		return nil, err
	}
	if takePrepared("restore", "", "") == nil { // a standby (standby.go) connected already
		if _, err := k.Connect(ctx, "kmmover", "restore", false, true); err != nil {
			return nil, err
		}
	}
	var snap *SnapshotInfo
	if !*delta { // looked up before anything is made (a delta looks it up beside its manifest)
		if snap, err = k.Snapshot(ctx, *id); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(*path, 0o755); err != nil {
		return nil, err
	}
	root, err := absDir(*path)
	if err != nil {
		return nil, err
	}
	if *delta { // the snapshot looked up while its manifest is fetched
		found := make(chan error, 1)
		go func() {
			_, err := k.Snapshot(ctx, *id)
			found <- err
		}()
		d, err := restoreDelta(ctx, k, *id, *mid, root, *parallel, *verifyAfter, func() error { return <-found })
		if err != nil {
			return nil, err
		}
		d.Seconds, d.PeakRSSBytes = since(start), peakRSS()
		return d, nil
	}
	stop := ticker(statfsDelta(root), func() int64 { return snap.RootEntry.Summary.Size })
	if err := k.prefetch(ctx, *id, snap.RootEntry.Summary.Size, workDir()); err != nil {
		fmt.Fprintf(os.Stderr, "kmmover: restoring without prefetch: %v\n", err)
	}
	type found struct {
		id  string
		err error
	}
	manifest := make(chan found, 1) // looked up while the data restores
	go func() {
		mid, err := k.manifestFor(ctx, *id)
		manifest <- found{mid, err}
	}()
	err = k.Run(ctx, nil, "snapshot", "restore", *id, root, "--parallel="+strconv.Itoa(*parallel))
	m := <-manifest
	if err == nil {
		err = m.err
	}
	if err == nil {
		_, err = relinkHardlinks(ctx, k, workDir(), *id, m.id, root)
	}
	stop()
	if err != nil {
		return nil, err
	}
	s := snap.RootEntry.Summary
	return restoreResult{"result", s.Size, s.Files, since(start), peakRSS()}, nil
}

// defaultParallel is kopia restore's parallelism: two files per CPU, 4 to 16 (1 GiB mixed on
// 2 CPUs: 12.6 s at 1, 8.6 s at 4, 10.7 s at 8).
func defaultParallel() int {
	return min(16, max(4, 2*runtime.NumCPU()))
}

// statfsDelta samples the bytes and inodes used on root's filesystem since the call: restore
// progress without walking what kopia is writing.
func statfsDelta(root string) func() (int64, int64) {
	used := func() (int64, int64) {
		var st syscall.Statfs_t
		if syscall.Statfs(root, &st) != nil {
			return 0, 0
		}
		return int64(st.Blocks-st.Bfree) * st.Bsize, int64(st.Files - st.Ffree)
	}
	b0, f0 := used()
	return func() (int64, int64) {
		b, f := used()
		return max(0, b-b0), max(0, f-f0)
	}
}

type verifyResult struct {
	Kind         string  `json:"kind"`
	Files        int64   `json:"files"`
	Bytes        int64   `json:"bytes"`
	Differences  int64   `json:"differences"`
	Diffs        []Diff  `json:"diffs"`
	Seconds      float64 `json:"seconds"`
	PeakRSSBytes int64   `json:"peakRssBytes"`
}

func verify(ctx context.Context, args []string, start time.Time) (any, error) {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	path := fs.String("path", "", "directory to verify")
	id := fs.String("manifest-snapshot", "", "manifest snapshot ID")
	maxDiffs := fs.Int("max-diffs", 20, "differences listed")
	if err := parse(fs, args, "path", "manifest-snapshot"); err != nil {
		return nil, err
	}
	root, err := absDir(*path)
	if err != nil {
		return nil, err
	}
	work := workDir()
	k, err := NewKopia(work)
	if err != nil {
		return nil, err
	}
	if _, err := k.Connect(ctx, "kmmover", "verify", false, true); err != nil {
		return nil, err
	}
	if _, err := k.Snapshot(ctx, *id); err != nil {
		return nil, err
	}
	vdir := filepath.Join(work, "verify-manifest")
	if err := os.RemoveAll(vdir); err != nil {
		return nil, err
	}
	if err := k.Run(ctx, nil, "snapshot", "restore", *id, vdir); err != nil {
		return nil, err
	}
	src, err := os.Open(filepath.Join(vdir, "manifest.jsonl"))
	if err != nil {
		return nil, fail("snapshot-missing", "snapshot %s holds no manifest.jsonl", *id)
	}
	defer src.Close()
	var c Counters
	stop := ticker(func() (int64, int64) { return c.Bytes.Load(), c.Files.Load() },
		func() int64 { return 0 })
	var walkErr error
	d, err := Compare(src, Walk(root, &c, &walkErr), *maxDiffs)
	stop()
	if err == nil {
		err = walkErr
	}
	if err != nil {
		return nil, err
	}
	return verifyResult{"result", d.Files, d.Bytes, d.Differences, d.Diffs, since(start), peakRSS()}, nil
}

// peakRSS bounds the mover's memory from above: kmmover's own peak plus that of its largest
// kopia run (they overlap in time; the kopia runs themselves do not). Linux reports both in KiB.
func peakRSS() int64 {
	var self, children syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children)
	return (self.Maxrss + children.Maxrss) * 1024
}

func since(t time.Time) float64 {
	return float64(time.Since(t).Milliseconds()) / 1000
}
