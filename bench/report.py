"""Figures, their baselines and verdicts; the machine they ran on; console and Markdown output."""

from __future__ import annotations

import math
import os
import platform
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples)


def p99(samples: Sequence[float]) -> float:
    """Nearest-rank 99th percentile (with fewer than 100 samples, the largest one)."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


@dataclass(frozen=True)
class Series:
    """A named set of samples (or a single count) in one unit."""

    name: str
    samples: tuple[float, ...]
    unit: str

    @classmethod
    def of(cls, name: str, samples: Sequence[float], unit: str) -> Series:
        if not samples:
            raise ValueError(f"{name}: no samples")
        return cls(name, tuple(samples), unit)

    @property
    def median(self) -> float:
        return median(self.samples)

    @property
    def p99(self) -> float:
        return p99(self.samples)


@dataclass(frozen=True)
class Figure:
    """One measured figure against its baseline; ``ratio`` is ours / baseline (medians)."""

    name: str
    ours: Series
    baseline: Series | None = None
    target: str = ""
    #: ``True`` met, ``False`` missed, ``None`` no target.
    met: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline.median == 0:
            return None
        return self.ours.median / self.baseline.median

    @property
    def verdict(self) -> str:
        return {True: "met", False: "not met", None: "-"}[self.met]


@dataclass
class Section:
    title: str
    intro: str = ""
    figures: list[Figure] = field(default_factory=list)
    #: Extra Markdown (tables of counts, the cost model) printed after the figures.
    extra: list[str] = field(default_factory=list)

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        return figure


def load_average() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def machine() -> dict[str, str]:
    """The machine, and its load when the run starts (``finish`` adds the load at the end)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "CPU": f"{cpu} ({platform.machine()})",
        "cores": str(os.cpu_count()),
        "OS": f"{platform.system()} {platform.release()}",
        "Python": f"{platform.python_implementation()} {sys.version.split()[0]}",
        "load average at start (1/5/15 min)": load_average(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def finish(info: dict[str, str]) -> dict[str, str]:
    return {**info, "load average at end (1/5/15 min)": load_average()}


def as_json(sections: Sequence[Section], machine_info: dict[str, str], command: str, seconds: float) -> dict:
    def series(s: Series | None) -> dict | None:
        if s is None:
            return None
        return {"name": s.name, "unit": s.unit, "median": s.median, "p99": s.p99, "samples": len(s.samples)}

    return {
        "machine": machine_info,
        "command": command,
        "seconds": round(seconds),
        "sections": [
            {
                "title": section.title,
                "figures": [
                    {
                        "name": f.name,
                        "ours": series(f.ours),
                        "baseline": series(f.baseline),
                        "ratio": f.ratio,
                        "target": f.target or None,
                        "met": f.met,
                        "note": f.note or None,
                    }
                    for f in section.figures
                ],
            }
            for section in sections
        ],
    }


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if unit == "ms":
        text = f"{value:.3f}" if value < 1 else f"{value:.2f}" if value < 100 else f"{value:.0f}"
    elif float(value).is_integer():
        text = f"{value:.0f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".strip()


def _row(figure: Figure) -> list[str]:
    ours, base = figure.ours, figure.baseline
    return [
        figure.name,
        fmt(ours.median, ours.unit),
        fmt(ours.p99, ours.unit),
        base.name if base else "-",
        fmt(base.median, base.unit) if base else "-",
        fmt(base.p99, base.unit) if base else "-",
        f"{figure.ratio:.2f}x" if figure.ratio is not None else "-",
        figure.target or "-",
        figure.verdict,
    ]


_HEADER = ["figure", "median", "p99", "baseline", "baseline median", "baseline p99", "ratio", "target", "verdict"]


def console(sections: Sequence[Section]) -> str:
    lines = []
    for section in sections:
        lines.append(f"\n== {section.title} ==")
        for figure in section.figures:
            row = dict(zip(_HEADER, _row(figure), strict=True))
            lines.append(f"- {row['figure']}: median {row['median']}, p99 {row['p99']}")
            if figure.baseline:
                lines.append(
                    f"    baseline {row['baseline']}: median {row['baseline median']}, p99 {row['baseline p99']}"
                    f"  -> ratio {row['ratio']}"
                )
            if figure.target:
                lines.append(f"    target: {figure.target} -> {figure.verdict}")
            if figure.note:
                lines.append(f"    note: {figure.note}")
        for extra in section.extra:
            lines.append(extra)
    return "\n".join(lines)


def markdown(sections: Sequence[Section], machine_info: dict[str, str], command: str, seconds: float) -> str:
    out = [
        "# paygate benchmarks",
        "",
        "Generated by `make bench` (`python -m bench`); do not edit by hand - rerun it. Every figure is",
        "measured in the same run as its baseline, on the machine below. Medians and p99 (nearest rank;",
        "with fewer than 100 samples the p99 is the slowest sample). Ratio = ours / baseline (medians).",
        "The same figures are in [benchmarks.json](benchmarks.json); the monthly bill they make is",
        "[cost.md](cost.md). What was met and what was not, and why: [performance.md](performance.md).",
        "",
        "## Machine",
        "",
        *(f"- {k}: {v}" for k, v in machine_info.items()),
        f"- command: `{command}` ({seconds:.0f} s)",
        "",
        "DynamoDB is Amazon's DynamoDB Local (in memory, on the same machine): its latency is not",
        "DynamoDB's, so store-path and webhook *times* show paygate's own cost plus a local round trip;",
        "request counts and capacity units are the figures that carry over to AWS.",
    ]
    for section in sections:
        out += ["", f"## {section.title}", ""]
        if section.intro:
            out += [section.intro, ""]
        if section.figures:
            out.append("| " + " | ".join(_HEADER) + " |")
            out.append("|" + "---|" * len(_HEADER))
            out += ["| " + " | ".join(_row(f)) + " |" for f in section.figures]
            notes = [f"- *{f.name}*: {f.note}" for f in section.figures if f.note]
            if notes:
                out += ["", *notes]
        for extra in section.extra:
            out += ["", extra]
    return "\n".join(out) + "\n"
