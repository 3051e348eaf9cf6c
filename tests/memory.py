"""This process's resident memory around a piece of work: its peak (VmHWM, reset first through
/proc/self/clear_refs) and what stays, both as growth over the level before."""

from __future__ import annotations

from pathlib import Path

import pytest

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")
_RESET_PEAK = "5"  # written to clear_refs: VmHWM starts again from the present VmRSS (Linux 4.0+)


def _status_mb(field: str) -> float:
    for line in _STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


class ResidentMemory:
    """`with ResidentMemory() as memory: ...`, then `memory.peak_mb` and `memory.kept_mb` (MB over before)."""

    def __enter__(self) -> "ResidentMemory":
        try:
            _CLEAR_REFS.write_text(_RESET_PEAK)
        except OSError as e:
            pytest.skip(f"the peak resident memory cannot be reset here ({e})")
        self.before_mb = _status_mb("VmRSS")
        self.peak_mb = self.kept_mb = 0.0
        return self

    def __exit__(self, *exc) -> None:
        self.peak_mb = _status_mb("VmHWM") - self.before_mb
        self.kept_mb = _status_mb("VmRSS") - self.before_mb
