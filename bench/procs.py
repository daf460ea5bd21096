"""Processes the benchmark starts, and how much memory each used at its peak."""

import json
from collections import Counter
from pathlib import Path


def children(pid):
    """Direct children of a process (Linux /proc)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def peak_rss_kib(pid):
    """The process's high-water resident set (VmHWM), in KiB; None once it has exited."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return None


def tree_peaks(name, pid):
    """(label, peak KiB) for a process and each of its children."""
    rows = [(name, peak_rss_kib(pid))]
    for number, child in enumerate(sorted(children(pid)), 1):
        rows.append((f"{name} child {number}", peak_rss_kib(child)))
    return rows


def collected(stats_dir):
    """The statement counts that every worker process wrote (see bench.worker), summed."""
    total = Counter()
    for path in Path(stats_dir).glob("*.json"):
        total.update(json.loads(path.read_text()))
    return total
