// Delta restore: a claim already holding an earlier copy of a volume is brought to a newer
// snapshot by writing only what differs. The new snapshot's manifest is merged, in path
// order (memory flat in the number of files), with the claim as it is (walked, not read): a
// path only the claim has is removed, a file whose size or mtime differs (or a symlink or
// type that does) is removed and then written again, a directory that differs gets its mode
// and owner; kopia then restores the new snapshot without overwriting what exists, so only
// the removed and the new paths are read from the repository.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// deltaPlan is what the merge found: paths to remove first, and what kopia will write.
type deltaPlan struct {
	Remove       []string
	Dirs         []*Entry            // directories whose mode or owner changed
	Written      map[string]struct{} // files kopia writes (new or changed)
	WriteFiles   int64
	WriteBytes   int64
	Unchanged    int64
	RemovedFiles int64
}

// entries reads a manifest (JSON lines, sorted by path) one entry at a time; nil at its end.
// `what` names it in errors.
func entries(r io.Reader, what string) func() (*Entry, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	line := 0
	return func() (*Entry, error) {
		b, err := br.ReadBytes('\n')
		if len(b) == 0 && err == io.EOF {
			return nil, nil
		} else if err != nil && err != io.EOF {
			return nil, err
		}
		line++
		var e Entry
		if err := json.Unmarshal(b, &e); err != nil {
			return nil, fmt.Errorf("%s line %d: %w", what, line, err)
		}
		return &e, nil
	}
}

// cursor follows a manifest alongside a walk (both in path order, so memory stays flat).
type cursor struct {
	next func() (*Entry, error)
	cur  *Entry
	end  bool
}

// at is the manifest's entry for path, or nil; called with paths in order.
func (p *cursor) at(path string) *Entry {
	for !p.end && (p.cur == nil || p.cur.Path < path) {
		cur, err := p.next()
		if err != nil || cur == nil {
			p.end, p.cur = true, nil
			break
		}
		p.cur = cur
	}
	if p.cur != nil && p.cur.Path == path {
		return p.cur
	}
	return nil
}

// planDelta merges the manifest of the new snapshot with what the directory holds (its
// entries, walked without reading: hashes "-"). A file is kept when its size and mtime are
// the manifest's (kopia restores each file's recorded mtime; rsync's quick check): the
// manifest of the copy the directory came from is not trusted, as a copy of a running
// app may hold a file as it was before the manifest read it.
func planDelta(newer io.Reader, held <-chan *Entry) (*deltaPlan, error) {
	defer func() {
		for range held {
		}
	}()
	nextNew := entries(newer, "manifest")
	p := &deltaPlan{Written: map[string]struct{}{}}
	n, err := nextNew()
	if err != nil {
		return nil, err
	}
	o, ok := <-held
	for n != nil || ok {
		switch {
		case !ok || (n != nil && n.Path < o.Path): // new: kopia writes it
			p.write(n)
			if n, err = nextNew(); err != nil {
				return nil, err
			}
			continue
		case n == nil || o.Path < n.Path: // gone: removed
			p.Remove = append(p.Remove, o.Path)
			if o.Type != "dir" {
				p.RemovedFiles++
			}
		default:
			switch {
			case sameHeld(n, o):
				p.Unchanged++
			case n.Type == "dir" && o.Type == "dir":
				p.Dirs = append(p.Dirs, n)
			default:
				p.Remove = append(p.Remove, o.Path)
				p.write(n)
			}
			if n, err = nextNew(); err != nil {
				return nil, err
			}
		}
		o, ok = <-held
	}
	return p, nil
}

// sameHeld reports whether a held entry matches the manifest's: type, mode, owner, links, and
// for a file its size and mtime (its content is not read).
func sameHeld(n, o *Entry) bool {
	var c Comparison
	held := *o
	held.SHA256 = n.SHA256
	compareEntry(&c, 0, n, &held)
	return c.Differences == 0 && (n.Type != "file" || n.MTime == o.MTime)
}

func (p *deltaPlan) write(e *Entry) {
	if e.Type == "file" {
		p.Written[e.Path] = struct{}{}
		p.WriteFiles++
		p.WriteBytes += e.Size
	}
}

// inside joins a manifest path to root, refusing one that would leave it.
func inside(root, rel string) (string, error) {
	abs := filepath.Join(root, rel)
	if abs != root && !strings.HasPrefix(abs, root+string(filepath.Separator)) {
		return "", fail("bad-manifest", "path %q leaves the volume", rel)
	}
	return abs, nil
}

// apply removes what the plan says and sets the changed directories' mode and owner.
func (p *deltaPlan) apply(root string) error {
	for _, rel := range p.Remove {
		abs, err := inside(root, rel)
		if err != nil {
			return err
		}
		if abs == root {
			continue
		}
		if err := os.RemoveAll(abs); err != nil {
			return err
		}
	}
	for _, d := range p.Dirs {
		abs, err := inside(root, d.Path)
		if err != nil {
			return err
		}
		mode, err := strconv.ParseUint(d.Mode, 8, 32)
		if err != nil {
			return fmt.Errorf("manifest mode %q of %s: %w", d.Mode, d.Path, err)
		}
		if err := os.Chmod(abs, fileMode(uint32(mode))); err != nil {
			return err
		}
		if err := os.Lchown(abs, int(d.UID), int(d.GID)); err != nil {
			return err
		}
	}
	return nil
}

func fileMode(v uint32) os.FileMode {
	m := os.FileMode(v & 0o777)
	if v&0o4000 != 0 {
		m |= os.ModeSetuid
	}
	if v&0o2000 != 0 {
		m |= os.ModeSetgid
	}
	if v&0o1000 != 0 {
		m |= os.ModeSticky
	}
	return m
}

// fetchManifest restores manifest snapshot id into dir and opens its manifest.jsonl.
func fetchManifest(ctx context.Context, k *Kopia, id, dir string) (*os.File, error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := k.Run(ctx, nil, "snapshot", "restore", id, dir); err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(dir, "manifest.jsonl"))
	if err != nil {
		return nil, fail("snapshot-missing", "snapshot %s holds no manifest.jsonl", id)
	}
	return f, nil
}

type deltaResult struct {
	Kind         string  `json:"kind"`
	Bytes        int64   `json:"bytes"`
	Files        int64   `json:"files"`
	Removed      int64   `json:"removed"`
	Unchanged    int64   `json:"unchanged"`
	Seconds      float64 `json:"seconds"`
	PeakRSSBytes int64   `json:"peakRssBytes"`
	// with --verify: the whole directory against the new manifest, as `verify` reports it
	Verified    bool   `json:"verified"`
	Differences int64  `json:"differences"`
	Diffs       []Diff `json:"diffs,omitempty"`
	ReadFiles   int64  `json:"readFiles"` // files the check read (the others: the manifest's word)
}

// restoreDelta brings root, which holds an earlier copy of the volume, to snapshot id (mid: its
// manifest snapshot, "" to look it up; found: whether id exists, asked before any change) by
// writing only what differs, relinks its hardlinks and, with verify, checks the whole
// directory against the new manifest: every path's metadata, and the content of what it
// wrote and of any file whose size or mtime is not the manifest's (one pod for the write
// and its check: a cut-over waits for both).
func restoreDelta(ctx context.Context, k *Kopia, id, mid, root string, parallel int, verify bool,
	found func() error) (*deltaResult, error) {
	if mid == "" {
		var err error
		if mid, err = k.manifestFor(ctx, id); err != nil {
			return nil, err
		}
	}
	if mid == "" {
		return nil, fail("snapshot-missing", "snapshot %s has no manifest: a delta needs one", id)
	}
	work := workDir()
	newer, err := fetchManifest(ctx, k, mid, filepath.Join(work, "delta-new"))
	if err != nil {
		return nil, err
	}
	defer newer.Close()
	var c0 Counters
	var walkErr error
	plan, err := planDelta(newer, Walk(root, &c0, &walkErr, func(*Entry) string { return "-" }))
	if err == nil {
		err = walkErr
	}
	if err != nil {
		return nil, err
	}
	if err := found(); err != nil { // the snapshot exists: only then is anything removed
		return nil, err
	}
	if err := plan.apply(root); err != nil {
		return nil, err
	}
	err = k.Run(ctx, nil, "snapshot", "restore", id, root, "--skip-existing",
		"--parallel="+strconv.Itoa(parallel))
	if err == nil {
		_, err = newer.Seek(0, io.SeekStart)
	}
	if err == nil { // the new manifest is here already: no third download
		_, err = relinkFrom(newer, mid, root)
	}
	if err != nil {
		return nil, err
	}
	r := &deltaResult{Kind: "result", Bytes: plan.WriteBytes, Files: plan.WriteFiles,
		Removed: plan.RemovedFiles, Unchanged: plan.Unchanged}
	if verify {
		if _, err := newer.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		again, err := os.Open(newer.Name())
		if err != nil {
			return nil, err
		}
		defer again.Close()
		kept := &keptHashes{cursor: cursor{next: entries(again, "manifest")}, written: plan.Written}
		var c Counters
		var walkErr error
		d, err := Compare(newer, Walk(root, &c, &walkErr, kept.known), 20)
		if err == nil {
			err = walkErr
		}
		if err != nil {
			return nil, err
		}
		r.Verified, r.Differences, r.Diffs = true, d.Differences, d.Diffs
		r.ReadFiles = d.Files - kept.kept
	}
	return r, nil
}

// keptHashes is Known for the check after a delta restore: every path's type, size, mode,
// owner and links are compared, but only the files this restore wrote are read; a file it
// kept (size and mtime the manifest's, as planDelta found it) is taken at the manifest's
// word, as rsync's quick check does.
type keptHashes struct {
	cursor
	written map[string]struct{}
	kept    int64
}

func (p *keptHashes) known(e *Entry) string {
	if _, ok := p.written[e.Path]; ok {
		return ""
	}
	if c := p.at(e.Path); c != nil && c.Type == "file" && c.Size == e.Size && c.MTime == e.MTime {
		p.kept++
		return c.SHA256
	}
	return ""
}
