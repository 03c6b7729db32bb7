"""``edgekd doctor``: the environment, line by line, and each problem with the command that fixes it."""

from __future__ import annotations


def doctor_lines() -> tuple[list[str], int]:
    """The report's lines and the exit code (1 when a problem was found)."""
    from ..doctor import doctor_report

    rep = doctor_report()
    width = max(len(label) for label, _ in rep.lines)
    lines = [f"{label:{width}s}  {text}" for label, text in rep.lines]
    if rep.problems:
        return lines + [""] + [f"problem: {line}" for line in rep.problems], 1
    return lines + ["\nno problems found"], 0
