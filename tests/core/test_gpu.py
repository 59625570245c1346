"""GPU paths (AMP, channels_last, CUDA inference): run only where a CUDA GPU is present."""

import numpy as np
import pytest
import tifffile
import torch

from core.nn.checkpoint import load_checkpoint
from core.predict.config import PredictConfig
from core.predict.inferer import predict_slice
from core.store.workspace import Workspace
from core.train.headless import train_headless
from core.workflow.ingest import import_dataset
from tests.synthetic import discs

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_training_on_cuda_with_amp_then_cuda_prediction_matches_cpu(tmp_path):
    rng = np.random.default_rng(0)
    pairs = [discs(rng, 64, 64) for _ in range(6)]
    tifffile.imwrite(tmp_path / "i.tif", np.stack([p[0] for p in pairs]), photometric="minisblack")
    tifffile.imwrite(tmp_path / "m.tif", np.stack([p[1] for p in pairs]), photometric="minisblack")
    ws = Workspace(tmp_path / "ws")
    import_dataset(ws, "d", tmp_path / "i.tif", tmp_path / "m.tif")
    summary = train_headless(
        ws,
        "d",
        epochs=2,
        config={
            "model": {"arch": "classic", "classic_width": 8},
            "patch_size": 32,
            "batch_size": 4,
            "steps_per_epoch": 5,
            "amp": True,
            "device": "cuda",
        },
    )
    assert summary["state"] == "done" and summary["device"].startswith("cuda")
    ckpt = load_checkpoint(summary["best_checkpoint"], device="cpu")
    image = pairs[0][0]
    on_cpu = predict_slice(ckpt, image, PredictConfig(device="cpu"))
    on_gpu = predict_slice(ckpt, image, PredictConfig(device="cuda"))
    assert np.abs(on_cpu - on_gpu).max() < 0.05  # autocast (bf16/fp16) on the GPU
