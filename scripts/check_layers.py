#!/usr/bin/env python3
"""Imports follow the data path: a module may use only modules of its own layer or lower ones.

Reads every `crate::<module>` path in src/ (code only: comments, `#[cfg(test)]` blocks at the end
of a file and test files are skipped), prints each back-edge (a file using a module of a higher
layer) and fails when there are more of them than scripts/layers.allow lists. New back-edges fail
CI; removing one is free (`--update` rewrites the list). Layers: docs/architecture.md.

    scripts/check_layers.py              # check (scripts/test.sh runs this)
    scripts/check_layers.py --update     # write the current back-edges to scripts/layers.allow
    scripts/check_layers.py --self-test  # the checker on a made-up tree
"""

import os
import re
import sys
import tempfile

# Lowest first. A module may import its own layer and every layer below it.
LAYERS = [
    # Shared types and helpers every stage uses; they import no stage.
    ("shared", {"", "backoff", "geometry", "messages", "resize", "time", "rng", "host", "redact", "stats", "malloc", "notify", "live"}),
    ("ingest", {"ingest"}),
    ("infer", {"infer"}),
    ("track", {"track"}),
    ("analytics", {"analytics"}),
    ("store", {"store"}),
    ("events", {"events"}),
    ("query", {"query"}),
    ("api", {"api"}),
    # The file's settings know every stage's parameter types; only the top reads them.
    ("config", {"config"}),
    ("top", {"service", "cli", "main", "lib"}),
    # Development tools (synthetic scenes, MOT files, simulated cameras, evaluations): they may
    # use anything, the product uses none of them.
    ("tools", {"synth", "mot", "simcam"}),
]

# Files that belong to another layer than their folder's.
FILE_LAYER = {
    "analytics/eval.rs": "tools",
    "analytics/footfall/eval.rs": "tools",
}

ALLOW = "scripts/layers.allow"
USE = re.compile(r"\bcrate::([a-z_][a-z0-9_]*)")
TEST_START = re.compile(r"^\s*#\[cfg\(test\)\]\s*$")


def layer_index():
    """Module name → layer position."""
    return {m: i for i, (_, mods) in enumerate(LAYERS) for m in mods}


def module_of(rel):
    """The top-level module of a path relative to src/ ('ingest/queue.rs' → 'ingest')."""
    first = rel.split("/")[0]
    return first[:-3] if first.endswith(".rs") else first


def is_test_file(rel):
    name = os.path.basename(rel)
    return name == "tests.rs" or name.endswith("_tests.rs") or "/tests/" in "/" + rel


def code_lines(text):
    """Lines of code: stops at a `#[cfg(test)]` item, drops `//` comments."""
    for line in text.splitlines():
        if TEST_START.match(line):
            break
        yield line.split("//", 1)[0]


def back_edges(src):
    """Sorted 'file -> module' strings for every use of a higher layer."""
    pos = layer_index()
    names = {name: i for i, (name, _) in enumerate(LAYERS)}
    edges = set()
    for root, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(root, f)
            rel = os.path.relpath(path, src).replace(os.sep, "/")
            if is_test_file(rel):
                continue
            mod = module_of(rel)
            if mod not in pos:
                sys.exit(f"{rel}: module {mod!r} has no layer in scripts/check_layers.py")
            own = names[FILE_LAYER[rel]] if rel in FILE_LAYER else pos[mod]
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
            for line in code_lines(text):
                for used in USE.findall(line):
                    if used == mod or used not in pos:
                        continue
                    if pos[used] > own:
                        edges.add(f"src/{rel} -> {used}")
    return sorted(edges)


def read_allow(path):
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as fh:
        return [ln.strip() for ln in fh if ln.strip() and not ln.startswith("#")]


def write_allow(path, edges):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("# Back-edges (a file using a higher layer) allowed for now: scripts/check_layers.py\n")
        fh.write("# fails when there are more. Shrink it with `scripts/check_layers.py --update`.\n")
        for e in edges:
            fh.write(e + "\n")


def check(repo, update=False, out=sys.stdout):
    """0 when the back-edges are no more than the allowlist's, 1 otherwise."""
    edges = back_edges(os.path.join(repo, "src"))
    allow_path = os.path.join(repo, ALLOW)
    if update:
        write_allow(allow_path, edges)
    allowed = read_allow(allow_path)
    new = [e for e in edges if e not in set(allowed)]
    for e in edges:
        print(("new  " if e in new else "     ") + e, file=out)
    print(f"layers: {len(edges)} back-edges, {len(allowed)} allowed ({ALLOW})", file=out)
    if len(edges) > len(allowed):
        print("layers: more back-edges than allowed; a stage may not import a later one "
              "(docs/architecture.md)", file=out)
        return 1
    if len(edges) < len(allowed):
        print("layers: fewer than allowed; `scripts/check_layers.py --update` shrinks the list",
              file=out)
    return 0


def self_test():
    import io

    def tree(files):
        d = tempfile.mkdtemp()
        for rel, text in files.items():
            p = os.path.join(d, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "w", encoding="utf-8") as fh:
                fh.write(text)
        return d

    base = {
        "src/lib.rs": "pub mod ingest;\n",
        "src/messages.rs": "use crate::geometry::BBox;\n",
        "src/ingest/mod.rs": "use crate::messages::Frame;\n// crate::store in a comment\n",
        "src/ingest/tests.rs": "use crate::service::run;\n",
        "src/track/mod.rs": "use crate::ingest::x;\n#[cfg(test)]\nmod tests {\n use crate::store::Store;\n}\n",
        "src/analytics/eval.rs": "use crate::synth::Scene;\n",
        "src/service/mod.rs": "use crate::config::Config;\nuse crate::synth::x;\n",
    }
    d = tree(base)
    assert back_edges(os.path.join(d, "src")) == ["src/service/mod.rs -> synth"], back_edges(
        os.path.join(d, "src"))
    sink = io.StringIO()
    assert check(d, out=sink) == 1, "one back-edge, none allowed: fails"
    assert check(d, update=True, out=sink) == 0, "--update allows it"
    worse = dict(base, **{"src/ingest/mod.rs": "use crate::infer::InputSpec;\n"})
    d2 = tree(worse)
    write_allow(os.path.join(d2, ALLOW), ["src/service/mod.rs -> synth"])
    assert check(d2, out=sink) == 1, "a new back-edge (ingest -> infer) fails"
    assert "new  src/ingest/mod.rs -> infer" in sink.getvalue()
    better = dict(base, **{"src/service/mod.rs": "use crate::config::Config;\n"})
    d3 = tree(better)
    write_allow(os.path.join(d3, ALLOW), ["src/service/mod.rs -> synth"])
    assert check(d3, out=sink) == 0, "fewer back-edges than allowed pass"
    odd = tree({"src/mystery/mod.rs": "use crate::ingest::x;\n"})
    try:
        back_edges(os.path.join(odd, "src"))
        raise AssertionError("a module without a layer must be refused")
    except SystemExit as e:
        assert "mystery" in str(e)
    print("check_layers self-test: ok")
    return 0


def main(argv):
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if "--self-test" in argv:
        return self_test()
    return check(repo, update="--update" in argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
