#!/usr/bin/env python3
"""Fails when the modules of src/ import each other in a circle.

A module is a file (`src/a/b.rs` or `src/a/b/mod.rs` is `a::b`). An edge A -> B is a path
`crate::…`, `super::…` or `self::…` in A that names B or something inside B. A module using its
own ancestors (its parent's types) is how Rust modules nest and is not counted; everything else
is. Unit tests at the end of a file are not counted. Prints every circle (a strongly connected component with more than one module) and exits 1
if there is one.
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")


def module_of(path):
    rel = os.path.relpath(path, ROOT)[:-3].split(os.sep)
    if rel[-1] == "mod":
        rel = rel[:-1]
    if rel in (["lib"], ["main"]):
        return ()
    return tuple(rel)


def strip_comments(text):
    # Unit tests (`#[cfg(test)] mod tests`, at the end of a file) may use anything.
    cut = re.search(r"^#\[cfg\(test\)\]\s*\n\s*mod\s+tests", text, flags=re.M)
    if cut:
        text = text[: cut.start()]
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r'"(?:\\.|[^"\\])*"', '""', text)


def main():
    modules = {}
    for d, _, files in os.walk(ROOT):
        for f in files:
            if f.endswith(".rs"):
                p = os.path.join(d, f)
                modules[module_of(p)] = p
    names = set(modules)

    def resolve(parts):
        """The longest known module that is a prefix of the path."""
        for n in range(len(parts), -1, -1):
            if tuple(parts[:n]) in names:
                return tuple(parts[:n])
        return None

    edges = {m: set() for m in names}
    path_re = re.compile(r"\b(crate|super|self)((?:::(?:super|[A-Za-z_][A-Za-z0-9_]*))+)")
    group_re = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)*)::\{([^;]*?)\}", re.S)
    for m, p in modules.items():
        text = strip_comments(open(p, encoding="utf-8").read())
        here = list(m) if p.endswith("mod.rs") or m == () else list(m[:-1])
        # `self` in a file module is the module itself; `super` its parent.
        me = list(m)

        def absolute(head, tail):
            if head == "crate":
                base = []
            elif head == "self":
                base = me[:]
            else:
                base = me[:-1]
            for seg in tail:
                if seg == "super":
                    base = base[:-1]
                else:
                    base.append(seg)
            return base

        found = []
        for g in group_re.finditer(text):
            prefix = [s for s in g.group(2).split("::") if s]
            for item in re.split(r",", g.group(3)):
                item = item.strip().split(" as ")[0].strip()
                if not item or item in ("self", "*"):
                    found.append(absolute(g.group(1), prefix))
                    continue
                first = re.split(r"::|\{", item)[0].strip()
                found.append(absolute(g.group(1), prefix + ([first] if first else [])))
        for h in path_re.finditer(text):
            tail = [s for s in h.group(2).split("::") if s]
            found.append(absolute(h.group(1), tail))
        for parts in found:
            target = resolve(parts)
            if target is None or target == m:
                continue
            if m[: len(target)] == target:
                continue  # an ancestor: the parent's types
            edges[m].add(target)
        del here

    # Tarjan's strongly connected components.
    index, low, on, stack, comps, counter = {}, {}, set(), [], [], [0]
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

    for v in sorted(names):
        if v not in index:
            visit(v)
    circles = [sorted(c) for c in comps if len(c) > 1]
    show = lambda m: "::".join(m) or "crate"
    for c in circles:
        members = set(c)
        print("import circle: " + " <-> ".join(show(m) for m in c))
        for a in c:
            for b in sorted(edges[a] & members):
                print(f"    {show(a)} -> {show(b)}")
    if circles:
        print(f"{len(circles)} import circle(s) in src/")
        return 1
    print(f"no import circles among {len(names)} modules")
    return 0


if __name__ == "__main__":
    sys.exit(main())
