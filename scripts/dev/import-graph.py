#!/usr/bin/env python3
"""The import graph of src/ between files, and its circles.

Each file is a node (`src/llm/runtime/engine.rs` is `llm::runtime::engine`, a folder's `mod.rs` is the folder);
an edge A -> B means A names B in a `use` or a path (`crate::x::y`, `super::y`, `self::y`).
A module that only declares or re-exports its children (`mod.rs`, `lib.rs`) does not count as
depending on them. Prints every strongly connected component of more than one file (a circle)
and exits 1 when there is one.

    python3 scripts/dev/import-graph.py [--dot]   (--dot: the whole graph for graphviz)
"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "src"


def module_of(path: Path) -> tuple:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def strip(text: str) -> str:
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    # The unit tests of a file may use anything: not part of its design.
    cut = re.search(r"#\[cfg\(test\)\]\s*mod tests", text)
    return text[: cut.start()] if cut else text


def main() -> int:
    files = {module_of(p): p for p in ROOT.rglob("*.rs")}
    modules = set(files)
    edges = {m: set() for m in modules}
    for module, path in files.items():
        text = strip(path.read_text(encoding="utf-8"))
        is_parent = path.name in ("mod.rs", "lib.rs", "main.rs")
        for match in re.finditer(r"\b((?:crate|super|self)(?:::[A-Za-z_][A-Za-z0-9_]*|::\{)+)", text):
            raw = match.group(1).rstrip(":{").split("::")
            if raw[0] == "crate":
                target, rest = [], raw[1:]
            else:
                target = list(module)
                rest = raw
                while rest and rest[0] in ("super", "self"):
                    if rest[0] == "super":
                        target = target[:-1]
                    rest = rest[1:]
            # The longest prefix that is a file.
            best = None
            for n in range(len(rest), -1, -1):
                candidate = tuple(target + rest[:n])
                if candidate in modules:
                    best = candidate
                    break
            if best is None or best == module:
                continue
            # A parent naming its own children (mod declarations, re-exports) is not a use.
            if is_parent and best[: len(module)] == module:
                continue
            # `use group::*`-style steps through a parent to reach a child are edges to the child;
            # a child naming its parent module (for re-exported items) is an edge to the parent.
            edges[module].add(best)
    if "--dot" in sys.argv:
        print("digraph src {")
        for a in sorted(edges):
            for b in sorted(edges[a]):
                print(f'  "{"::".join(a) or "crate"}" -> "{"::".join(b) or "crate"}";')
        print("}")
        return 0
    # Tarjan's strongly connected components.
    index, low, stack, on, comps = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            comps.append(comp)

    for v in sorted(modules):
        if v not in index:
            visit(v)
    circles = [sorted(c) for c in comps if len(c) > 1]
    n_edges = sum(len(e) for e in edges.values())
    print(f"{len(modules)} files, {n_edges} imports between them, {len(circles)} circles")
    for circle in circles:
        names = ["::".join(m) or "crate" for m in circle]
        print("circle: " + ", ".join(names))
        for a in circle:
            for b in sorted(edges[a]):
                if b in circle:
                    print(f"    {'::'.join(a) or 'crate'} -> {'::'.join(b) or 'crate'}")
    return 1 if circles else 0


if __name__ == "__main__":
    sys.exit(main())
