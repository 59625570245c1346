"""Peak memory of loading a (hostile) model file after torch is imported (used by test_hostile_models.py).

Usage: ``python tests/core/_load_rss.py FILE``

Imports torch and SegDash's checkpoint code, resets the RSS high-water mark (``/proc/self/clear_refs``,
as ``_predict_rss.py`` does), calls ``load_checkpoint(FILE, trust_code=True)`` and prints one JSON
line: ``refused`` (a SegDashError), ``message``, ``growth`` (peak during the call minus RSS before it,
bytes), ``method``.
"""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def _hwm() -> int | None:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return None


def main(path: str) -> int:
    import psutil
    import torch  # noqa: F401 - what a real load has imported

    from core.errors import SegDashError
    from core.nn.checkpoint import load_checkpoint

    before = psutil.Process().memory_info().rss
    try:
        Path("/proc/self/clear_refs").write_text("5")
        method = "clear_refs"
    except OSError:
        method = "ru_maxrss"
    refused, message = False, ""
    try:
        load_checkpoint(path, trust_code=True)
    except SegDashError as exc:
        refused, message = True, str(exc)
    peak = _hwm() if method == "clear_refs" else None
    if peak is None:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"refused": refused, "message": message, "growth": peak - before, "method": method}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
