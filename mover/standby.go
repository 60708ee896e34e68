// standby keeps a mover pod running, idle, until kube-migrate execs a verb into it. A
// cut-over starts its movers this way before the downtime begins. The pod is then already
// scheduled, its claim mounted and the image running, and the verb's end is seen when its
// exec stream closes, not when the kubelet next notices a stopped container.
//
// With --for, the standby also does now what that verb would do first and what does not
// depend on the claim's data: it connects to the repository as the verb would, and for a
// backup lists the repository's blobs and fetches the volume's previous manifest. The verb
// exec'd later finds this in KM_WORK_DIR/standby/ and starts from there.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
)

type standbyLine struct {
	Kind     string `json:"kind"`
	Prepared bool   `json:"prepared"`
}

// prepared is what a standby did for the verb exec'd after it.
type prepared struct {
	Verb string `json:"verb"`
	User string `json:"user"`
	Host string `json:"host"`
	// the repository's blobs before the backup: a list taken earlier holds no blob the backup
	// writes, so every one it writes is counted (and waited for) as new
	BlobsBefore  map[string]int64 `json:"blobsBefore,omitempty"`
	PrevManifest string           `json:"prevManifest,omitempty"` // its manifest.jsonl, "" if none
}

func standbyDir() string { return filepath.Join(workDir(), "standby") }

// standby prepares for --for (when given), prints {"kind":"standby","prepared":B} and waits
// for SIGTERM. What could not be prepared (no repository yet, unreachable) is left to the
// verb, which reports the real error.
func standby(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("standby", flag.ContinueOnError)
	path := fs.String("path", "", "the claim's mount (checked to exist)")
	verb := fs.String("for", "", "backup | restore: the verb to prepare for")
	user := fs.String("user", "", "backup: the snapshot source's user")
	host := fs.String("host", "", "backup: the snapshot source's host")
	if err := parse(fs, args, "path"); err != nil {
		return err
	}
	if _, err := absDir(*path); err != nil {
		return err
	}
	p := prepared{Verb: *verb, User: *user, Host: *host}
	ok := false
	if k, err := NewKopia(workDir()); err == nil && *verb != "" {
		ok = prepare(ctx, k, &p) == nil
	}
	if ok {
		ok = writePrepared(&p) == nil
	}
	emit(standbyLine{"standby", ok})
	<-ctx.Done()
	return nil
}

func prepare(ctx context.Context, k *Kopia, p *prepared) error {
	switch p.Verb {
	case "restore":
		_, err := k.Connect(ctx, "kmmover", "restore", false, true)
		return err
	case "backup":
		if p.User == "" || p.Host == "" {
			return fail("kopia-failed", "standby --for backup needs --user and --host")
		}
		if _, err := k.Connect(ctx, p.User, p.Host, false, false); err != nil {
			return err
		}
		before, err := k.Blobs(ctx, "")
		if err != nil {
			return err
		}
		p.BlobsBefore = before
		prev := &prevHashes{}
		closePrev := previousManifest(ctx, k, p.User, p.Host, filepath.Join(standbyDir(), "prev-manifest"), prev)
		defer closePrev()
		if prev.next != nil {
			p.PrevManifest = filepath.Join(standbyDir(), "prev-manifest", "manifest.jsonl")
		}
		return nil
	}
	return fail("kopia-failed", "standby --for %q: backup or restore", p.Verb)
}

func writePrepared(p *prepared) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	tmp := filepath.Join(standbyDir(), "prepared.json.tmp")
	if err := os.MkdirAll(standbyDir(), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(standbyDir(), "prepared.json"))
}

// takePrepared returns what a standby prepared for this verb (and source), once: the file
// is removed, so a second verb in the same pod starts from scratch. nil when there is none.
func takePrepared(verb, user, host string) *prepared {
	path := filepath.Join(standbyDir(), "prepared.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	_ = os.Remove(path)
	var p prepared
	if json.Unmarshal(b, &p) != nil || p.Verb != verb || p.User != user || p.Host != host {
		return nil
	}
	return &p
}
