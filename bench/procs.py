"""Processes the benchmark starts: how much memory each used at its peak, and how
much CPU each group of them used during a load."""

import json
import os
from collections import Counter
from pathlib import Path

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


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


def cpu_seconds(pid):
    """User and system CPU seconds a process has used; 0 once it has exited."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    # Fields after the command name, which may hold spaces: utime and stime are 14 and 15.
    fields = stat.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_SECOND


def machine_busy_seconds():
    """CPU seconds all cores together spent on anything but idling (Linux /proc/stat)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(
        int, Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    return (user + nice + system + irq + softirq + steal) / TICKS_PER_SECOND


class CpuMeter:
    """CPU seconds per group of processes (each a root pid and its children) over a
    stretch of time, and the machine's total; what no group used is "the rest"."""

    def __init__(self, groups):
        self.groups = groups

    def _read(self):
        used = {
            label: sum(cpu_seconds(pid) for pid in [root, *children(root)])
            for label, root in self.groups.items()
        }
        used["machine"] = machine_busy_seconds()
        return used

    def __enter__(self):
        self._start = self._read()
        return self

    def __exit__(self, *_):
        end = self._read()
        self.used = {label: end[label] - self._start[label] for label in end}
        self.used["the rest"] = self.used["machine"] - sum(
            self.used[label] for label in self.groups
        )
