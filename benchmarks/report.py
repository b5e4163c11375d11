"""Results: a JSON file with every round, a markdown table, a PNG chart."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import typing as t

PACKAGES = (
    "flask", "werkzeug", "flask-signoff", "flask-login", "flask-session",
    "cachelib", "flask-jwt-extended", "pyjwt", "sqlalchemy", "redis", "psycopg",
    "gunicorn", "matplotlib",
)  # fmt: skip


def versions(extra: dict[str, str]) -> dict[str, str]:
    out = {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    if shutil.which("wrk"):
        proc = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=10)
        out["wrk"] = (proc.stdout + proc.stderr).split()[1]
    out.update(extra)
    return out


def machine() -> dict[str, t.Any]:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = 0
    try:
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_bytes": mem,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
    }


def median(rounds: list[dict[str, t.Any]], key: str) -> float:
    values = [r[key] for r in rounds if r.get(key) is not None]
    return statistics.median(values) if values else float("nan")


def _f(value: float, digits: int = 0) -> str:
    if value != value:  # nan
        return "–"
    return f"{value:,.{digits}f}"


def markdown(results: dict[str, t.Any]) -> str:
    lines: list[str] = []
    add = lines.append
    m, v = results["machine"], results["versions"]
    add(f"# Benchmark results ({results['mode']})\n")
    add(
        f"{m['nproc']} CPUs ({m['cpu']}), Python {m['python']}, "
        f"{results['rounds']} interleaved rounds, medians shown. "
        f"Run took {results['elapsed_s']:.0f} s.\n"
    )
    add("Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".\n")
    for note in results["notes"]:
        add(f"- {note}")
    if results["notes"]:
        add("")

    get = results.get("get")
    if get:
        add("## 1. Authenticated GET, in-process (WSGI app called directly)\n")
        add("| contender | ops/s | µs/op | CPU µs/op | × bare Flask |")
        add("|---|---:|---:|---:|---:|")
        for _name, row in get["summary"].items():
            add(
                f"| {row['label']} | {_f(row['ops'])} | {_f(row['us'], 1)} "
                f"| {_f(row.get('cpu_us', float('nan')), 1)} "
                f"| {_f(row['ratio'], 2)} |"
            )
        add("")
        prim = get.get("primitives")
        if prim:
            add("Primitives (one call each, same rounds):\n")
            add("| primitive | µs/op |")
            add("|---|---:|")
            for _name, row in prim.items():
                add(f"| {row['label']} | {_f(row['us'], 1)} |")
            add("")
        close = get.get("vs_bare_plus_read")
        if close:
            add("Flask-Signoff against *bare Flask + one store read*:\n")
            add(
                "| contender | µs/op | bare + read µs | overhead µs "
                "| (bare+read)/actual |"
            )
            add("|---|---:|---:|---:|---:|")
            for _name, row in close.items():
                add(
                    f"| {row['label']} | {_f(row['us'], 1)} | {_f(row['floor_us'], 1)} "
                    f"| {_f(row['overhead_us'], 1)} | {_f(row['ratio'], 2)} |"
                )
            add("")
        _targets(add, get.get("targets"))

    cycle = results.get("cycle")
    if cycle:
        add("## 2. Login → GET → logout → GET (401), in-process\n")
        add(
            "| contender | cycles/s | µs/cycle "
            "| copy of credential refused after logout |"
        )
        add("|---|---:|---:|:---:|")
        for _name, row in cycle["summary"].items():
            add(
                f"| {row['label']} | {_f(row['ops'])} | {_f(row['us'], 1)} "
                f"| {'yes' if row['revoked'] else '**no**'} |"
            )
        add("")
        _targets(add, cycle.get("targets"))

    http = results.get("http")
    if http:
        add(
            f"## 3. Over HTTP: gunicorn ({http['workers']} sync workers) + wrk "
            f"(-t1 -c{http['connections']} -d{http['duration']}s)\n"
        )
        add("| contender | req/s | p50 ms | p99 ms | errors | RSS/worker MiB |")
        add("|---|---:|---:|---:|---:|---:|")
        for _name, row in http["summary"].items():
            add(
                f"| {row['label']} | {_f(row['rps'])} | {_f(row['p50_ms'], 2)} "
                f"| {_f(row['p99_ms'], 2)} | {row['errors']} "
                f"| {_f(row['rss_mib'], 1)} |"
            )
        add("")
        _targets(add, http.get("targets"))

    scale = results.get("scale")
    if scale:
        add(f"## 4. Scale: {scale['small']:,} vs {scale['large']:,} stored sessions\n")
        add(
            f"{scale['large']:,} sessions of {scale['users']:,} users, bulk-loaded "
            "in the store's own layout (sample read back and compared).\n"
        )
        add(
            "| store | lookup µs (small) | lookup µs (large) | GET ops/s (small) "
            "| GET ops/s (large) | load s | bytes/session |"
        )
        add("|---|---:|---:|---:|---:|---:|---:|")
        for kind, row in scale["stores"].items():
            add(
                f"| {kind} | {_f(row['small']['lookup_us'], 1)} "
                f"| {_f(row['large']['lookup_us'], 1)} | {_f(row['small']['get_ops'])} "
                f"| {_f(row['large']['get_ops'])} | {_f(row['load_s'], 1)} "
                f"| {_f(row['bytes_per_session'])} |"
            )
        add("")
        purges = {k: r["purge"] for k, r in scale["stores"].items() if r.get("purge")}
        if purges:
            add(
                "`purge_expired` of every expired row, in batches, "
                "with concurrent GETs that each write their touch:\n"
            )
            add(
                "| store | rows | batches | purge s | longest batch ms "
                "| longest GET ms before | longest GET ms during | p99 GET ms during |"
            )
            add("|---|---:|---:|---:|---:|---:|---:|---:|")
            for kind, p in purges.items():
                add(
                    f"| {kind} | {p['purged_rows']:,} | {p['batches']:,} "
                    f"| {_f(p['purge_s'], 1)} | {_f(p['longest_batch_ms'], 1)} "
                    f"| {_f(p['max_get_ms_before'], 1)} "
                    f"| {_f(p['max_get_ms_during'], 1)} "
                    f"| {_f(p['p99_get_ms_during'], 1)} |"
                )
            add("")
        _targets(add, scale.get("targets"))
    return "\n".join(lines)


def _targets(add: t.Callable[[str], None], targets: list[dict] | None) -> None:
    """The table of a phase's targets, if it has any."""
    if not targets:
        return
    add("Targets:\n")
    add("| target | goal | measured | met |")
    add("|---|---|---:|:---:|")
    for row in targets:
        met = "yes" if row["met"] else "no"
        add(f"| {row['what']} | {row['goal']} | {_f(row['value'], 2)} | {met} |")
    add("")


def chart(results: dict[str, t.Any], path: str) -> str | None:
    """Bar charts of in-process ops/s and HTTP req/s; a note if impossible."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no chart"
    panels = []
    if results.get("get"):
        s = results["get"]["summary"]
        panels.append(
            ("in-process GET, ops/s", [(r["label"], r["ops"]) for r in s.values()])
        )
    if results.get("http"):
        s = results["http"]["summary"]
        panels.append(
            ("gunicorn + wrk, req/s", [(r["label"], r["rps"]) for r in s.values()])
        )
    if not panels:
        return None
    fig, axes = plt.subplots(
        1, len(panels), figsize=(7 * len(panels), 6), squeeze=False
    )
    for ax, (title, rows) in zip(axes[0], panels, strict=True):
        labels = [r[0] for r in rows][::-1]
        values = [r[1] for r in rows][::-1]
        colors = ["tab:orange" if "Signoff" in lab else "tab:gray" for lab in labels]
        ax.barh(labels, values, color=colors)
        ax.set_title(title)
        ax.tick_params(axis="y", labelsize=8)
        for i, value in enumerate(values):
            ax.text(value, i, f" {value:,.0f}", va="center", fontsize=7)
    fig.suptitle(f"Flask-Signoff and peers ({results['mode']}, medians)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def write(results: dict[str, t.Any], outdir: str) -> list[str]:
    os.makedirs(outdir, exist_ok=True)
    paths = []
    json_path = os.path.join(outdir, "latest.json")
    with open(json_path, "w") as f:
        json.dump(results, f, indent=1, default=str)
    paths.append(json_path)
    note = chart(results, os.path.join(outdir, "latest.png"))
    if note:
        results["notes"].append(note)
    else:
        paths.append(os.path.join(outdir, "latest.png"))
    md_path = os.path.join(outdir, "latest.md")
    with open(md_path, "w") as f:
        f.write(markdown(results))
    paths.append(md_path)
    return paths
