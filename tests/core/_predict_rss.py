"""Measure the peak memory of predicting a stack, in a fresh process (used by test_inference.py).

Usage: ``python tests/core/_predict_rss.py CHECKPOINT STACK.tif OUT_DIR``

Prints one JSON line, sizes in bytes: ``cold`` (RSS once torch is imported, the model loaded and the
stack opened), ``one_slice_peak`` (peak while predicting slice 0 alone, a warm-up that also makes
the one-off allocations of a first forward pass), ``baseline`` (RSS after it), ``peak`` (high-water
RSS while predicting the whole stack), ``growth`` (peak - baseline), ``extra`` (peak -
one_slice_peak: what the whole stack costs beyond one slice; the number to watch, as the allocator
may or may not hand the warm-up's memory back before ``baseline``), ``memmap`` (whether the stack
was memory-mapped), ``slices``, ``seconds``, ``method``.

The high-water mark is reset before each phase by writing 5 to ``/proc/self/clear_refs`` (Linux),
so each peak is that of its phase alone; where that is refused, ``ru_maxrss`` (peak since the
process started) is used instead, which can only make ``growth`` look smaller.
"""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def _status_bytes(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    """Reset the kernel's RSS high-water mark (VmHWM); False where that is not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak(method: str) -> int:
    hwm = _status_bytes("VmHWM") if method == "clear_refs" else None
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main(argv: list[str]) -> int:
    checkpoint, stack_path, out_dir = argv[1], argv[2], Path(argv[3])
    import numpy as np
    import psutil
    import torch

    torch.set_num_threads(1)
    from core.data.io import read_stack
    from core.nn.checkpoint import load_checkpoint
    from core.predict.config import PredictConfig
    from core.predict.inferer import predict_slice
    from core.predict.stack import predict_stack

    ckpt = load_checkpoint(checkpoint)
    stack = read_stack(stack_path)
    cfg = PredictConfig(batch_size=4)
    rss = psutil.Process().memory_info
    cold = rss().rss
    method = "clear_refs" if _reset_peak() else "ru_maxrss"
    predict_slice(ckpt, np.array(stack.data[0]), cfg)  # warm-up: one-off allocations of the first pass
    warm_peak = _peak(method)
    baseline = rss().rss
    _reset_peak()
    result = predict_stack(ckpt, stack.data, out_masks=out_dir / "masks.tif", out_prob=out_dir / "prob.tif", cfg=cfg)
    peak = _peak(method)
    print(
        json.dumps(
            {
                "cold": cold,
                "one_slice_peak": warm_peak,
                "baseline": baseline,
                "peak": peak,
                "growth": peak - baseline,
                "extra": peak - warm_peak,
                "memmap": isinstance(stack.data, np.memmap),
                "slices": result.n_done,
                "seconds": round(result.seconds, 2),
                "method": method,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
