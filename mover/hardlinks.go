// Hardlinks after a restore: kopia v0.23.1 snapshots a hardlinked file once per name and
// restores separate copies, so restore looks up the backup's manifest snapshot (tagged with
// the data snapshot's ID) and links every name whose manifest entry says "hardlink" back to
// the first name of its inode, as the source volume had it.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// manifestFor finds the manifest snapshot made with data snapshot id; "" if there is none.
func (k *Kopia) manifestFor(ctx context.Context, id string) (string, error) {
	var list []struct {
		ID string `json:"id"`
	}
	if err := k.JSON(ctx, &list, "snapshot", "list", "--all", "--json", "--tags=data-snapshot:"+id); err != nil {
		return "", err
	}
	if len(list) == 0 {
		return "", nil
	}
	return list[len(list)-1].ID, nil
}

// relinkHardlinks restores the hardlinks recorded in manifest snapshot mid (manifestFor(id),
// "" if there is none) under root; it returns how many names were linked.
func relinkHardlinks(ctx context.Context, k *Kopia, work, id, mid, root string) (int, error) {
	if mid == "" {
		fmt.Fprintf(os.Stderr, "kmmover: no manifest snapshot for %s: hardlinks not restored\n", id)
		return 0, nil
	}
	dir := filepath.Join(work, "restore-manifest")
	if err := os.RemoveAll(dir); err != nil {
		return 0, err
	}
	if err := k.Run(ctx, nil, "snapshot", "restore", mid, dir); err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	f, err := os.Open(filepath.Join(dir, "manifest.jsonl"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return relinkFrom(f, mid, root)
}

// relinkFrom restores the hardlinks a manifest (read from r) records under root.
func relinkFrom(f io.Reader, mid, root string) (int, error) {
	next := entries(f, "manifest "+mid)
	n := 0
	for {
		e, err := next()
		if err != nil || e == nil {
			return n, err
		}
		if e.Hardlink == "" || !filepath.IsLocal(e.Path) || !filepath.IsLocal(e.Hardlink) {
			continue
		}
		name := filepath.Join(root, e.Path)
		if same(name, filepath.Join(root, e.Hardlink)) {
			continue // linked already (a delta restore kept both names)
		}
		tmp := filepath.Join(filepath.Dir(name), ".kmmover-link.tmp")
		_ = os.Remove(tmp)
		if err := os.Link(filepath.Join(root, e.Hardlink), tmp); err != nil {
			return n, err
		}
		if err := os.Rename(tmp, name); err != nil {
			return n, err
		}
		n++
	}
}

// same reports whether a and b name one inode (rename(2) between two such names does nothing).
func same(a, b string) bool {
	x, errA := os.Lstat(a)
	y, errB := os.Lstat(b)
	return errA == nil && errB == nil && os.SameFile(x, y)
}
