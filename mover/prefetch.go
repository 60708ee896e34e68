// Prefetching before a restore. kopia v0.23.1's `snapshot restore` never prefetches: on a cold
// cache every content is one ranged GET of its pack blob, so a volume of many small files costs
// a request per file (10,000 files of 300 bytes took a minute). Before restoring, kmmover lists
// the snapshot's small files, finds the pack blobs holding their contents, raises the content
// cache so it keeps those packs until the restore reads them, and has `kopia cache prefetch
// --hint=blobs` download them whole. Big files stream well as they are and are left alone.
// The cache also gets room for the snapshot's other contents (as far as half the work
// directory's free space allows): kopia caches every content the restore reads, and a cache
// only as big as the prefetched packs evicts them for the big files' contents while the
// small files still need them (1 GiB mixed: 28 s at --parallel 8 with a pack-sized cache,
// 9 s with room for all; measured on the host with bench/volume_data.py's tree).
// When the whole snapshot fits in the cache (half the work directory's free space), the packs
// of its big files are prefetched as well: whole packs, five at a time, instead of a ranged
// GET per content during the restore (1 GiB mixed in a pod, fixed 1 MiB chunks: 12.7 s ->
// 8.8 s; noisy, about 20% from run to run).
// This is an optimisation only: restore logs a failure and goes on without it.
package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

const (
	smallFileBytes = 1 << 20 // files below this are prefetched
	minSmallFiles  = 64      // fewer small files are not worth reading the repository's index
	maxSmallIDs    = 2 << 20 // small contents tracked at most (about 40 bytes each)
	cacheMaxMB     = 2048    // the prefetched packs take at most half of this
	cacheCapMB     = 32768   // the content cache is raised to at most this for a restore
	prefetchChunk  = 4096    // object IDs per `kopia cache prefetch` (argv far below ARG_MAX)
	maxBigFiles    = 65536   // more big files than this: only the small files are prefetched
)

// contentKey is a data content ID's first 16 bytes: enough to tell contents apart, and a
// fraction of the memory of its hex string.
type contentKey [16]byte

func keyOf(cid string) (contentKey, bool) {
	var k contentKey
	if len(cid) < 32 {
		return k, false
	}
	_, err := hex.Decode(k[:], []byte(cid[:32]))
	return k, err == nil
}

type packUse struct {
	id     string
	small  int    // small contents in it
	sample string // one of them: prefetching it with --hint=blobs fetches the whole pack
	bytes  int64
}

// prefetch downloads the packs holding snapshot id's small files (and, when the snapshot fits
// the cache, its big files') into the content cache, raising the cache's limits to hold them.
func (k *Kopia) prefetch(ctx context.Context, id string, snapshotBytes int64, work string) error {
	type blobs struct {
		sizes map[string]int64
		err   error
	}
	packSizes := make(chan blobs, 1) // listed while the snapshot is
	go func() {
		sizes, err := k.Blobs(ctx, "p")
		packSizes <- blobs{sizes, err}
	}()
	small, files, big, err := k.smallContents(ctx, id)
	sizes := <-packSizes
	if err == nil {
		err = sizes.err
	}
	if err != nil {
		return err
	}
	room := min(freeBytes(work)/2, cacheCapMB*1_000_000)
	whole := snapshotBytes*105/100 < room && len(big) < maxBigFiles
	if files < minSmallFiles && !whole {
		return nil
	}
	packs, err := k.packsOf(ctx, small, sizes.sizes)
	if err != nil {
		return err
	}
	// Densest packs first (most small contents per byte), as many as half the cache holds:
	// the other half is room for what the restore caches while it reads them.
	slices.SortFunc(packs, func(a, b *packUse) int {
		return cmp.Compare(int64(b.small)*a.bytes, int64(a.small)*b.bytes)
	})
	base, err := baseCacheMB()
	if err != nil {
		return err
	}
	limit := max(base, cacheMaxMB) * 1_000_000 / 2
	var total int64
	var oids []string
	covered := 0
	for _, p := range packs {
		if total+p.bytes > limit {
			continue
		}
		total += p.bytes
		covered += p.small
		oids = append(oids, p.sample)
	}
	bigs := 0
	if whole { // the big files' packs too, whole and 5 at a time, instead of a ranged GET each
		oids, bigs = append(oids, big...), len(big)
	}
	if len(oids) == 0 {
		return nil
	}
	want := min(2*total+snapshotBytes*105/100, room)
	mb := max(base, (want+999_999)/1_000_000)
	fmt.Fprintf(os.Stderr, "kmmover: prefetching %d pack(s), %d MB, holding %d of %d small "+
		"content(s) (%d small files), and the packs of %d big file(s); content cache %d MB\n",
		len(oids)-bigs, total/1_000_000, covered, len(small), files, bigs, mb)
	if mb != base {
		m := strconv.FormatInt(mb, 10)
		if err := k.Run(ctx, nil, "cache", "set", "--content-cache-size-mb="+m,
			"--content-cache-size-limit-mb="+m); err != nil {
			return err
		}
	}
	for chunk := range slices.Chunk(oids, prefetchChunk) {
		args := append([]string{"cache", "prefetch", "--hint=blobs", "--disable-repository-log"}, chunk...)
		if err := k.Run(ctx, nil, args...); err != nil {
			return err
		}
	}
	return nil
}

// freeBytes is what the filesystem of dir has free for us (0 if unknown).
func freeBytes(dir string) int64 {
	var st syscall.Statfs_t
	if syscall.Statfs(dir, &st) != nil {
		return 0
	}
	return int64(st.Bavail) * st.Bsize
}

// smallContents lists snapshot id recursively (`kopia ls -r -l`, one entry a line: mode, size,
// date, time, zone, object ID, name) and returns the contents of its regular files under
// smallFileBytes, and how many such files it has. Such a file is one content: its object ID is
// the content ID, with "Z" in front if compressed. A name with a newline may split a line;
// the fragment is skipped unless it parses, and a parsed fragment costs at most a useless
// lookup.
func (k *Kopia) smallContents(ctx context.Context, id string) (map[contentKey]struct{}, int64, []string, error) {
	small := make(map[contentKey]struct{})
	var files int64
	var big []string
	err := k.stream(ctx, func(r io.Reader) error {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) < 7 || !strings.HasPrefix(f[0], "-") {
				continue
			}
			size, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil || size <= 0 {
				continue
			}
			if size >= smallFileBytes {
				if len(big) < maxBigFiles {
					big = append(big, f[5])
				}
				continue
			}
			key, ok := keyOf(strings.TrimPrefix(f[5], "Z"))
			if !ok {
				continue
			}
			files++
			if len(small) < maxSmallIDs {
				small[key] = struct{}{}
			}
		}
		return sc.Err()
	}, "ls", "-r", "-l", "--timezone=utc", id)
	return small, files, big, err
}

// packsOf reads the repository's index (`kopia content list --json`, decoded as it streams)
// and the pack blobs' sizes, and returns the packs holding any of the contents in small.
func (k *Kopia) packsOf(ctx context.Context, small map[contentKey]struct{}, sizes map[string]int64) ([]*packUse, error) {
	byID := map[string]*packUse{}
	err := k.stream(ctx, func(r io.Reader) error {
		dec := json.NewDecoder(bufio.NewReaderSize(r, 256<<10))
		if _, err := dec.Token(); err != nil {
			return err
		}
		for dec.More() {
			var c struct {
				Pack    string `json:"packFile"`
				Content string `json:"contentID"`
				Deleted bool   `json:"deleted"`
			}
			if err := dec.Decode(&c); err != nil {
				return err
			}
			key, ok := keyOf(c.Content)
			if !ok || c.Deleted || c.Pack == "" {
				continue
			}
			if _, ok := small[key]; !ok {
				continue
			}
			p := byID[c.Pack]
			if p == nil {
				p = &packUse{id: c.Pack, sample: c.Content}
				byID[c.Pack] = p
			}
			p.small++
		}
		_, err := dec.Token()
		return err
	}, "content", "list", "--json")
	if err != nil {
		return nil, err
	}
	var packs []*packUse
	for id, p := range byID {
		if n, ok := sizes[id]; ok && n > 0 {
			p.bytes = n
			packs = append(packs, p)
		}
	}
	return packs, nil
}

// stream runs kopia with its stdout read by parse as it is written.
func (k *Kopia) stream(ctx context.Context, parse func(io.Reader) error, args ...string) error {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := parse(pr)
		_, _ = io.Copy(io.Discard, pr) // kopia never blocks on a parser that gave up
		done <- err
	}()
	runErr := k.Run(ctx, pw, args...)
	pw.Close()
	parseErr := <-done
	if runErr != nil {
		return runErr
	}
	if parseErr != nil {
		return fmt.Errorf("kopia %s: unexpected output: %w", args[0], parseErr)
	}
	return nil
}
