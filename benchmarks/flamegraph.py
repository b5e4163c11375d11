"""A small flame graph (SVG) from collapsed stacks, such as py-spy's ``raw``.

py-spy's own SVGs carry every frame of the process (start-up, imports,
servers) and weigh hundreds of kilobytes; this keeps only what lies under
one frame (by default the loop of :mod:`benchmarks.profile_get`), merges
frames by function (line numbers dropped) and leaves out those under
``--min`` percent::

    py-spy record --format raw -o get.txt -- \\
        python -m benchmarks.profile_get signoff_sqlite
    python -m benchmarks.flamegraph get.txt get.svg --title "SQLite cookie GET"
"""

from __future__ import annotations

import argparse
import html
import re
import typing as t

ROOT = "time_get.<locals>.once"
WIDTH = 1200
ROW = 17


class Node:
    __slots__ = ("children", "count", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self.count = 0
        self.children: dict[str, Node] = {}


def parse(lines: t.Iterable[str], root: str) -> Node:
    """The tree of the stacks under the first frame named ``root``."""
    tree = Node("all")
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]
        start = next((i for i, f in enumerate(frames) if f.startswith(root)), None)
        if start is None or not count.isdigit():
            continue
        node = tree
        node.count += int(count)
        for frame in frames[start:]:
            node = node.children.setdefault(frame, Node(frame))
            node.count += int(count)
    return tree


def _color(name: str) -> str:
    if "flask_signoff" in name:
        return "#e8743b"
    if "sqlite" in name or "redis" in name or "psycopg" in name or "jwt" in name:
        return "#5aa469"
    return "#c9c9c9"


def render(tree: Node, title: str, minimum: float) -> str:
    total = tree.count or 1
    rects: list[str] = []
    depth = 0

    def walk(node: Node, x: float, level: int) -> None:
        nonlocal depth
        depth = max(depth, level)
        width = node.count / total * WIDTH
        share = 100 * node.count / total
        label = html.escape(node.name)
        y = level * ROW
        text = ""
        if width > 40:
            chars = int(width / 6.5)
            text = (
                f'<text x="{x + 3:.1f}" y="{y + 12}">'
                f"{html.escape(node.name[:chars])}</text>"
            )
        rects.append(
            f'<g><title>{label} ({share:.1f}%)</title><rect x="{x:.1f}" y="{y}" '
            f'width="{width:.1f}" height="{ROW - 1}" fill="{_color(node.name)}"/>'
            f"{text}</g>"
        )
        for child in sorted(node.children.values(), key=lambda c: -c.count):
            if 100 * child.count / total >= minimum:
                walk(child, x, level + 1)
            x += child.count / total * WIDTH

    for child in tree.children.values():
        walk(child, 0.0, 1)
    height = (depth + 2) * ROW
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" '
        f'height="{height}" font-family="monospace" font-size="11">'
        f'<text x="4" y="12">{html.escape(title)} ({total} samples; '
        "orange: Flask-Signoff, green: drivers)</text>" + "".join(rects) + "</svg>\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stacks")
    parser.add_argument("svg")
    parser.add_argument("--title", default="")
    parser.add_argument("--root", default=ROOT)
    parser.add_argument("--min", type=float, default=0.3, help="percent")
    args = parser.parse_args(argv)
    with open(args.stacks) as f:
        tree = parse(f, args.root)
    with open(args.svg, "w") as f:
        f.write(render(tree, args.title or args.stacks, args.min))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
