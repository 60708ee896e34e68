// Comparing two manifests in one pass: both are sorted by path (byte order), so a merge walks
// them side by side and memory does not grow with the number of files.
package main

import (
	"fmt"
	"io"
	"strconv"
)

// Diff is one difference between the source manifest and the target tree. What is one of
// missing, extra, type, size, mode, owner, link (symlink target or hardlink partner), sha256.
type Diff struct {
	Path   string `json:"path"`
	What   string `json:"what"`
	Source string `json:"source"`
	Target string `json:"target"`
}

type Comparison struct {
	Files, Bytes, Differences int64
	Diffs                     []Diff
}

func (c *Comparison) add(max int, path, what, source, target string) {
	c.Differences++
	if len(c.Diffs) < max {
		c.Diffs = append(c.Diffs, Diff{path, what, source, target})
	}
}

// Compare merges the source manifest (JSON lines) with the target's entries. It always
// drains target, so the walker behind it finishes.
func Compare(src io.Reader, target <-chan *Entry, max int) (*Comparison, error) {
	defer func() {
		for range target {
		}
	}()
	next := entries(src, "source manifest")
	c := &Comparison{Diffs: []Diff{}}
	s, err := next()
	if err != nil {
		return nil, err
	}
	t, ok := <-target
	for s != nil || ok {
		switch {
		case !ok || (s != nil && s.Path < t.Path):
			c.add(max, s.Path, "missing", s.Type, "")
			if s, err = next(); err != nil {
				return nil, err
			}
			continue
		case s == nil || t.Path < s.Path:
			c.add(max, t.Path, "extra", "", t.Type)
		default:
			compareEntry(c, max, s, t)
			if s, err = next(); err != nil {
				return nil, err
			}
		}
		if t.Type == "file" {
			c.Files++
			c.Bytes += t.Size
		}
		t, ok = <-target
	}
	return c, nil
}

func compareEntry(c *Comparison, max int, s, t *Entry) {
	if s.Type != t.Type {
		c.add(max, s.Path, "type", s.Type, t.Type)
		return
	}
	switch s.Type {
	case "file":
		if s.Size != t.Size {
			c.add(max, s.Path, "size", strconv.FormatInt(s.Size, 10), strconv.FormatInt(t.Size, 10))
		} else if s.SHA256 != t.SHA256 {
			c.add(max, s.Path, "sha256", s.SHA256, t.SHA256)
		}
	case "symlink":
		if s.Link != t.Link {
			c.add(max, s.Path, "link", s.Link, t.Link)
		}
	}
	if s.Type != "symlink" && s.Mode != t.Mode { // a symlink's mode is not kept on Linux
		c.add(max, s.Path, "mode", s.Mode, t.Mode)
	}
	if s.UID != t.UID || s.GID != t.GID {
		c.add(max, s.Path, "owner", owner(s), owner(t))
	}
	if s.Hardlink != t.Hardlink {
		c.add(max, s.Path, "link", hardlink(s), hardlink(t))
	}
}

func owner(e *Entry) string { return fmt.Sprintf("%d:%d", e.UID, e.GID) }

func hardlink(e *Entry) string {
	if e.Hardlink == "" {
		return ""
	}
	return "hardlink to " + e.Hardlink
}
