#!/usr/bin/env python3
"""Generate the wrapper go.mod that builds k8s.io/kubernetes binaries at a tag.

`go install k8s.io/kubernetes/cmd/...@vX` fails: k8s's go.mod replaces every staging
module (k8s.io/api, ...) with ./staging/src paths that are not in the module zip.
A wrapper module requires k8s.io/kubernetes and replaces each staging module it
requires with the published tag v0.<minor>.<patch>.  A staging module whose tag the
module proxy does not serve, and which the four binaries do not import (sample-apiserver,
say), is replaced by an empty local stub module instead; if a binary did import it the
build would fail loudly.  Run once per version; the generated files are committed.

usage: gen-k8s-gomod.py vX.Y.Z OUTDIR
"""

import re
import sys
import urllib.error
import urllib.request
from pathlib import Path

PROXY = "https://proxy.golang.org"


def served(module: str, tag: str) -> bool:
    try:
        with urllib.request.urlopen(f"{PROXY}/{module}/@v/{tag}.mod", timeout=30):
            return True
    except urllib.error.HTTPError:
        return False


def main() -> None:
    version, out = sys.argv[1], Path(sys.argv[2])
    _major, minor, patch = version.lstrip("v").split(".")
    with urllib.request.urlopen(f"{PROXY}/k8s.io/kubernetes/@v/{version}.mod") as r:
        mod = r.read().decode()
    go_line = re.search(r"^go (\S+)$", mod, re.M)
    godebug = re.search(r"^godebug (default=\S+)$", mod, re.M)
    staging = sorted(set(re.findall(r"^\s+(k8s\.io/[a-z0-9-]+) v0\.0\.0$", mod, re.M)))
    lines = ["module local.build/k8s", "", f"go {go_line.group(1) if go_line else '1.22.0'}", ""]
    if godebug:
        lines += [f"godebug {godebug.group(1)}", ""]
    lines += [f"require k8s.io/kubernetes {version}", "", "replace ("]
    out.mkdir(parents=True, exist_ok=True)
    for m in staging:
        tag = f"v0.{minor}.{patch}"
        if served(m, tag):
            lines.append(f"\t{m} => {m} {tag}")
            continue
        stub = out / "stub" / m.split("/")[1]
        stub.mkdir(parents=True, exist_ok=True)
        (stub / "go.mod").write_text(f"module {m}\n\ngo 1.22.0\n")
        lines.append(f"\t{m} => ./stub/{m.split('/')[1]}")
        print(f"{m}@{tag} not served by the proxy: stubbed", file=sys.stderr)
    lines += [")", ""]
    (out / "go.mod").write_text("\n".join(lines))
    print(f"{out}/go.mod: {len(staging)} staging modules at v0.{minor}.{patch}", file=sys.stderr)


if __name__ == "__main__":
    main()
