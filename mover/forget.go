// Deleting a backup's volume data: its kopia snapshots are deleted from the repository, then
// kopia's full maintenance runs, which reclaims the contents no snapshot references once
// they are older than its safety margin (24 h: a backup writing meanwhile is never hurt).
// The caller names the snapshots; kmmover deletes only those the repository still holds, so
// a second run after a crash deletes the rest and reports the others as already gone.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

type forgetResult struct {
	Kind        string   `json:"kind"`
	Deleted     []string `json:"deleted"`
	Missing     []string `json:"missing"`
	Maintenance string   `json:"maintenance"` // "full", or why it did not run
	Seconds     float64  `json:"seconds"`
}

func forget(ctx context.Context, args []string, start time.Time) (any, error) {
	fs := flag.NewFlagSet("forget", flag.ContinueOnError)
	ids := fs.String("snapshots", "", "comma-separated snapshot IDs to delete")
	if err := parse(fs, args, "snapshots"); err != nil {
		return nil, err
	}
	k, err := NewKopia(workDir())
	if err != nil {
		return nil, err
	}
	res := forgetResult{Kind: "result", Deleted: []string{}, Missing: []string{}}
	if _, err := k.Connect(ctx, "kmmover", "maintenance", false, false); err != nil {
		var f *Failure
		if errors.As(err, &f) && f.Reason == "repository-missing" { // nothing of it is left
			res.Missing, res.Maintenance = strings.Split(*ids, ","), "no repository"
			res.Seconds = since(start)
			return res, nil
		}
		return nil, err
	}
	var held []struct {
		ID string `json:"id"`
	}
	if err := k.JSON(ctx, &held, "snapshot", "list", "--all", "--json"); err != nil {
		return nil, err // one listing, not a lookup per snapshot (a kopia run each)
	}
	inRepo := make(map[string]bool, len(held))
	for _, h := range held {
		inRepo[h.ID] = true
	}
	for _, id := range strings.Split(*ids, ",") {
		switch {
		case id == "":
		case inRepo[id]:
			res.Deleted = append(res.Deleted, id)
		default:
			res.Missing = append(res.Missing, id)
		}
	}
	if len(res.Deleted) > 0 {
		if err := k.Run(ctx, nil, append([]string{"snapshot", "delete", "--delete"}, res.Deleted...)...); err != nil {
			return nil, err
		}
	}
	res.Maintenance = "not needed" // nothing deleted: nothing for it to reclaim
	if len(res.Deleted) > 0 {
		res.Maintenance = "full"
		err := k.Run(ctx, nil, "maintenance", "set", "--owner=me")
		if err == nil {
			err = k.Run(ctx, nil, "maintenance", "run", "--full")
		}
		if err != nil { // the snapshots are gone; their contents wait for the next run
			fmt.Fprintf(os.Stderr, "kmmover: maintenance: %v\n", err)
			res.Maintenance = "failed: " + err.Error()
		}
	}
	res.Seconds = since(start)
	return res, nil
}
