// The file manifest: what a volume held, entry by entry, so a restore can be checked
// independently of kopia. Streamed in path order (byte order of the relative path) so two
// manifests diff in one merge pass and memory stays flat in the number of files: the walker
// holds one directory listing per depth level, a bounded window of entries waits for its
// hashes, and only hardlinked inodes are remembered.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
)

// Entry is one manifest line. Size is 0 for directories (their size depends on the
// filesystem, not on the data) and the target's length for symlinks.
type Entry struct {
	Path     string `json:"path"`
	Type     string `json:"type"`
	Size     int64  `json:"size"`
	Mode     string `json:"mode"`
	UID      uint32 `json:"uid"`
	GID      uint32 `json:"gid"`
	Link     string `json:"link,omitempty"`
	SHA256   string `json:"sha256,omitempty"`
	Hardlink string `json:"hardlink,omitempty"` // first path (in manifest order) of the same inode
	// when the file was last written and changed, and its inode (not compared: a restored
	// copy has its own): a later backup reuses the hash of a file all three still match
	MTime int64  `json:"mtime,omitempty"`
	CTime int64  `json:"ctime,omitempty"`
	Ino   uint64 `json:"ino,omitempty"`

	abs  string
	done chan struct{} // closed once SHA256 is set (files only)
	gone bool          // vanished between listing and hashing: left out
	err  error
}

// Counters are read by the progress ticker while a manifest is being computed.
type Counters struct {
	Files, Dirs, Bytes atomic.Int64
}

const (
	hashWorkers = 4
	window      = 1024 // entries in flight between the walker and the consumer
)

type devIno struct{ dev, ino uint64 }

// Known gives the hash of a file whose content is known already (an entry of the walk, with
// its stat filled in), or "": the walker then reads the file. Called in path order.
type Known func(e *Entry) string

// Walk streams the manifest of root: entries arrive hashed and in path order on the
// returned channel, which closes at the end; *errp holds the first error after that.
// A file `known` (may be nil) has a hash for is not read.
func Walk(root string, c *Counters, errp *error, known ...Known) <-chan *Entry {
	out := make(chan *Entry, window)
	ordered := make(chan *Entry, window)
	jobs := make(chan *Entry, window)
	var wg sync.WaitGroup
	for range hashWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1<<20)
			for e := range jobs {
				e.SHA256, e.gone, e.err = hashFile(e.abs, buf, c)
				close(e.done)
			}
		}()
	}
	w := &walker{root: root, out: ordered, jobs: jobs, links: map[devIno]string{}, c: c}
	if len(known) > 0 {
		w.known = known[0]
	}
	var walkErr error
	go func() {
		walkErr = w.dir("", root)
		close(jobs)
		close(ordered)
		wg.Wait()
	}()
	go func() {
		defer close(out)
		var first error
		for e := range ordered {
			if e.done != nil {
				<-e.done
			}
			if e.err != nil && first == nil {
				first = e.err
			}
			if e.gone || first != nil {
				continue
			}
			out <- e
		}
		wg.Wait()
		if walkErr != nil {
			first = walkErr
		}
		*errp = first
	}()
	return out
}

type walker struct {
	root  string
	out   chan<- *Entry
	jobs  chan<- *Entry
	links map[devIno]string
	c     *Counters
	known Known
}

// item is a directory member (sub=false) or the subtree under it (sub=true). A subtree sorts
// as name+"/", so "a-b" and "a.txt" come before "a/x" and "a0" after: byte order of paths.
type item struct {
	key  string
	name string
	sub  bool
}

func (w *walker) dir(rel, abs string) error {
	f, err := os.Open(abs)
	if err != nil {
		if rel != "" && errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	list, err := f.ReadDir(-1)
	f.Close()
	if err != nil {
		return err
	}
	items := make([]item, 0, len(list)+len(list)/8)
	for _, d := range list {
		items = append(items, item{key: d.Name(), name: d.Name()})
		if d.IsDir() {
			items = append(items, item{key: d.Name() + "/", name: d.Name(), sub: true})
		}
	}
	list = nil
	sort.Slice(items, func(i, j int) bool { return items[i].key < items[j].key })
	for _, it := range items {
		p, a := it.name, filepath.Join(abs, it.name)
		if rel != "" {
			p = rel + "/" + it.name
		}
		if it.sub {
			if err := w.dir(p, a); err != nil {
				return err
			}
			continue
		}
		if err := w.entry(p, a); err != nil {
			return err
		}
	}
	return nil
}

func (w *walker) entry(rel, abs string) error {
	fi, err := os.Lstat(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	e := &Entry{Path: rel, Mode: modeString(fi.Mode()), abs: abs}
	if st != nil {
		e.UID, e.GID = st.Uid, st.Gid
		e.MTime, e.CTime, e.Ino = st.Mtim.Nano(), st.Ctim.Nano(), st.Ino
	}
	switch m := fi.Mode(); {
	case m.IsDir():
		e.Type = "dir"
		w.c.Dirs.Add(1)
	case m.IsRegular():
		e.Type, e.Size, e.done = "file", fi.Size(), make(chan struct{})
		w.c.Files.Add(1)
	case m&fs.ModeSymlink != 0:
		e.Type = "symlink"
		if e.Link, err = os.Readlink(abs); err != nil {
			return err
		}
		e.Size = int64(len(e.Link))
	default:
		e.Type = "other"
	}
	if st != nil && !fi.IsDir() && st.Nlink > 1 {
		k := devIno{uint64(st.Dev), st.Ino}
		if first, ok := w.links[k]; ok {
			e.Hardlink = first
		} else {
			w.links[k] = rel
		}
	}
	if e.done != nil && w.known != nil {
		if sum := w.known(e); sum != "" {
			e.SHA256, e.done = sum, nil
			w.c.Bytes.Add(e.Size)
		}
	}
	if e.done != nil {
		w.jobs <- e
	}
	w.out <- e
	return nil
}

func hashFile(path string, buf []byte, c *Counters) (sum string, gone bool, err error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", true, nil
	} else if err != nil {
		return "", false, err
	}
	defer f.Close()
	h := sha256.New()
	for {
		n, rerr := f.Read(buf)
		h.Write(buf[:n])
		c.Bytes.Add(int64(n))
		if rerr == io.EOF {
			break
		} else if rerr != nil {
			return "", false, rerr
		}
	}
	return hex.EncodeToString(h.Sum(nil)), false, nil
}

// modeString is the octal permission bits plus setuid/setgid/sticky, as chmod takes them.
func modeString(m fs.FileMode) string {
	v := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		v |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		v |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		v |= 0o1000
	}
	return "0" + strconv.FormatUint(uint64(v), 8)
}

// prevHashes answers Known from a previous manifest of the same volume, read alongside the
// walk (both in path order, so memory stays flat): a file with the same size, mtime, ctime
// and inode as then has the same content, as rsync and git assume (ctime cannot be set
// back by a user).
type prevHashes struct {
	cursor
	reused atomic.Int64 // files whose hash was reused
}

func (p *prevHashes) known(e *Entry) string {
	c := p.at(e.Path)
	if c == nil || c.Type != "file" || c.SHA256 == "" || c.MTime == 0 {
		return ""
	}
	if c.Size != e.Size || c.MTime != e.MTime || c.CTime != e.CTime || c.Ino != e.Ino {
		return ""
	}
	p.reused.Add(1)
	return c.SHA256
}
