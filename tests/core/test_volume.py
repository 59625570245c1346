"""Chunked volumes (core.data.chunked) and their prediction chunk by chunk into Zarr
(core.predict.volume), in one process and sharded over two torchrun processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
import zarr

from core.data.chunked import Volume, blocks, create_volume, is_chunked, open_volume, sample_slices
from core.data.omezarr import write_omezarr
from core.errors import SegDashError
from core.nn.checkpoint import load_checkpoint, save_checkpoint
from core.nn.model import ModelConfig
from core.predict.config import PredictConfig
from core.predict.stack import predict_stack
from core.predict.volume import predict_volume
from tests.core.test_inference import train_tiny
from tests.synthetic import discs

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def stack() -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.stack([discs(rng, 80, 96)[0] for _ in range(5)])


@pytest.fixture(scope="module")
def ckpt_path(tmp_path_factory) -> Path:
    """A tiny classic U-Net trained a little on discs (so its masks are not all one class)."""
    cfg = ModelConfig(arch="classic", classic_width=4)
    path = tmp_path_factory.mktemp("ckpt") / "m.pt"
    return save_checkpoint(
        path,
        train_tiny(cfg, 40, 1e-2),
        cfg,
        class_names=["bg", "disc"],
        norm_window=(0.0, 255.0),
        patch_size=32,
        epoch=1,
        metrics={},
    )


def _zarr(path: Path, data: np.ndarray, chunks, fmt: int = 3) -> Path:
    arr = zarr.create_array(str(path), shape=data.shape, chunks=chunks, dtype=data.dtype, zarr_format=fmt)
    arr[:] = data
    return path


@pytest.mark.parametrize("fmt", [2, 3])
def test_open_volume_reads_blocks_of_zarr_v2_and_v3(tmp_path, stack, fmt):
    vol = open_volume(_zarr(tmp_path / "v.zarr", stack, (2, 32, 32), fmt))
    assert vol.shape == stack.shape and vol.chunks == (2, 32, 32) and vol.dtype == np.uint8
    np.testing.assert_array_equal(vol.read(slice(1, 4), slice(10, 70), slice(None, None, 3)), stack[1:4, 10:70, ::3])
    assert sample_slices(vol, 3).shape == (3, 80, 96)


def test_open_volume_ome_zarr_plain_arrays_and_refusals(tmp_path, stack):
    write_omezarr(tmp_path / "ome.zarr", stack, pixel_size=(0.5, 0.1, 0.1))
    vol = open_volume(tmp_path / "ome.zarr")
    assert vol.shape == stack.shape and vol.pixel_size == (0.5, 0.1, 0.1)
    np.testing.assert_array_equal(vol.read(slice(0, 5), slice(0, 80), slice(0, 96)), stack)
    flat = open_volume(_zarr(tmp_path / "2d.zarr", stack[0], (40, 40)))
    assert flat.shape == (1, 80, 96)
    np.testing.assert_array_equal(flat.read(slice(0, 1), slice(5, 9), slice(0, 96)), stack[:1, 5:9])
    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    group.create_array("raw", shape=stack.shape, chunks=(1, 80, 96), dtype="uint8")[:] = stack
    assert open_volume(tmp_path / "g.zarr").shape == stack.shape
    group.create_array("labels", shape=stack.shape, dtype="uint8")
    with pytest.raises(SegDashError, match="2 arrays"):
        open_volume(tmp_path / "g.zarr")
    n5 = tmp_path / "v.n5"
    n5.mkdir()
    (n5 / "attributes.json").write_text(json.dumps({"n5": "2.0.0"}))
    with pytest.raises(SegDashError, match="N5 container of 0 datasets"):
        open_volume(n5)
    with pytest.raises(SegDashError, match="not a Zarr"):
        open_volume(tmp_path)
    _zarr(tmp_path / "4d.zarr", np.zeros((2, 3, 8, 8), np.uint8), (1, 1, 8, 8))
    with pytest.raises(SegDashError, match="axis names"):
        open_volume(tmp_path / "4d.zarr")
    with pytest.raises(SegDashError, match="exists"):
        create_volume(tmp_path / "v.n5", (1, 2, 2), np.uint8, (1, 2, 2))


def write_n5(path: Path, data: np.ndarray, chunks, **attrs) -> Path:
    """An N5 dataset as Java tools (n5-imglib2, BigDataViewer) write it: dimensions fastest first
    (x, y, z), gzip blocks; extra ``attrs`` go into its attributes.json."""
    ts = pytest.importorskip("tensorstore")
    spec = {
        "driver": "n5",
        "kvstore": {"driver": "file", "path": str(path)},
        "metadata": {
            "dimensions": list(data.shape[::-1]),
            "blockSize": list(chunks[::-1]),
            "dataType": data.dtype.name,
            "compression": {"type": "gzip"},
        },
        "create": True,
    }
    store = ts.open(spec).result()
    store.write(data.T).result()
    if attrs:
        meta = json.loads((path / "attributes.json").read_text())
        (path / "attributes.json").write_text(json.dumps({**meta, **attrs}))
    return path


def test_open_volume_reads_n5_datasets_and_bigdataviewer_containers(tmp_path, stack):
    raw = write_n5(tmp_path / "v.n5" / "raw", stack.astype(np.uint16) * 7, (2, 32, 48), resolution=[0.1, 0.2, 0.5])
    (tmp_path / "v.n5" / "attributes.json").write_text(json.dumps({"n5": "4.0.0"}))
    for where in (raw, tmp_path / "v.n5"):  # the dataset, or the container of one dataset
        assert is_chunked(where)
        vol = open_volume(where)
        assert vol.shape == stack.shape and vol.chunks == (2, 32, 48) and vol.dtype == np.uint16
        assert vol.pixel_size == (0.5, 0.2, 0.1)  # resolution is listed x, y, z
        np.testing.assert_array_equal(
            vol.read(slice(1, 4), slice(10, 70), slice(None, None, 3)), 7 * stack[1:4, 10:70, ::3].astype(np.uint16)
        )
        np.testing.assert_array_equal(vol[4], 7 * stack[4].astype(np.uint16))
    # BigDataViewer: setup0/timepoint0/s0 (full resolution) beside coarser levels
    bdv = tmp_path / "bdv.n5"
    write_n5(bdv / "setup0" / "timepoint0" / "s0", stack, (1, 80, 96))
    write_n5(bdv / "setup0" / "timepoint0" / "s1", stack[:, ::2, ::2], (1, 40, 48))
    (bdv / "attributes.json").write_text(json.dumps({"n5": "2.2.0"}))
    np.testing.assert_array_equal(np.asarray(open_volume(bdv)), stack)
    flat = open_volume(write_n5(tmp_path / "2d.n5", stack[0], (40, 40)))
    assert flat.shape == (1, 80, 96)
    np.testing.assert_array_equal(flat[0], stack[0])
    write_n5(bdv / "setup1" / "timepoint0" / "s0", stack, (1, 80, 96))
    with pytest.raises(SegDashError, match="3 datasets .*setup1/timepoint0/s0"):
        open_volume(bdv)
    bad = tmp_path / "bad.n5"
    bad.mkdir()
    (bad / "attributes.json").write_text(json.dumps({"dimensions": [4, 4], "dataType": "complex7"}))
    with pytest.raises(SegDashError, match="cannot open the N5 dataset"):
        open_volume(bad)


def test_blocks_cover_the_grid_once():
    grid = list(blocks((5, 80, 96), (2, 32, 32)))
    assert len(grid) == 3 * 3 * 3
    hits = np.zeros((5, 80, 96), np.int64)
    for b in grid:
        hits[b] += 1
    assert (hits == 1).all()


class _Spy:
    """A zarr array that records the largest read."""

    def __init__(self, arr):
        self.arr, self.largest = arr, 0

    def __getitem__(self, key):
        out = self.arr[key]
        self.largest = max(self.largest, out.size)
        return out


def test_predict_volume_matches_the_stack_and_reads_a_block_at_a_time(tmp_path, stack, ckpt_path):
    ckpt = load_checkpoint(ckpt_path)
    cfg = PredictConfig(tile=32)
    predict_stack(ckpt, stack, out_masks=tmp_path / "ref.tif", cfg=cfg)
    ref = tifffile.imread(tmp_path / "ref.tif")
    assert 0.05 < ref.mean() < 0.95  # the masks are not trivial
    vol = open_volume(_zarr(tmp_path / "in.zarr", stack, (2, 40, 48)))

    # blocks as large as the slice: no halo, exactly the stack's prediction
    whole = predict_volume(ckpt, vol, tmp_path / "whole.zarr", cfg=cfg)
    assert whole["halo"] == 0 and whole["chunks"] == [2, 80, 96] and whole["blocks"] == 3
    out = zarr.open_array(str(tmp_path / "whole.zarr"))
    assert out.chunks == (2, 80, 96)
    np.testing.assert_array_equal(out[:], ref)

    # smaller blocks: each read is one block and its halo, and the halo hides the block borders
    spy = _Spy(vol.array)
    small = Volume(spy, vol.index, vol.shape, vol.chunks, vol.dtype)
    summary = predict_volume(ckpt, small, tmp_path / "blocks.zarr", cfg=cfg, block=32, halo=16)
    assert summary["halo"] == 16 and summary["blocks"] == 3 * 3 * 3
    assert spy.largest <= 2 * (32 + 2 * 16) ** 2
    blocked = zarr.open_array(str(tmp_path / "blocks.zarr"))[:]
    assert (blocked == ref).mean() > 0.97
    assert not list(tmp_path.glob(".*tmp*"))
    with pytest.raises(SegDashError, match="exists"):
        predict_volume(ckpt, vol, tmp_path / "blocks.zarr", cfg=cfg)


def test_torchrun_sharded_prediction_writes_what_one_process_writes(tmp_path, stack, ckpt_path):
    src = _zarr(tmp_path / "in.zarr", stack, (2, 40, 48), fmt=2)
    opts = ["--checkpoint", str(ckpt_path), "--input", str(src), "--tile", "32", "--block", "32", "--halo", "16"]
    env = {**os.environ, "SEGDASH_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "core"]
    proc = subprocess.run(
        [*cmd, "predict", *opts, "--out", str(tmp_path / "two.zarr")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert sorted(s["rank"] for s in lines) == [0, 1] and sum(s["blocks_here"] for s in lines) == 27
    one = predict_volume(
        load_checkpoint(ckpt_path),
        open_volume(src),
        tmp_path / "one.zarr",
        cfg=PredictConfig(tile=32),
        block=32,
        halo=16,
    )
    assert one["world_size"] == 1
    np.testing.assert_array_equal(
        zarr.open_array(str(tmp_path / "two.zarr"))[:], zarr.open_array(str(tmp_path / "one.zarr"))[:]
    )
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".zarr")) == ["in.zarr", "one.zarr", "two.zarr"]


def test_import_copies_a_zarr_volume_slab_by_slab(tmp_path, stack):
    from core.data.chunked import as_array
    from core.data.io import read_stack
    from core.store.workspace import Workspace

    src = _zarr(tmp_path / "plain.zarr", stack, (2, 40, 48))
    assert np.array_equal(read_stack(src).data, stack)  # small: read into memory
    copy = as_array(open_volume(src), in_memory_bytes=0, folder=tmp_path)  # large: a temporary TIFF
    assert isinstance(copy, np.memmap) and Path(copy.filename).parent == tmp_path
    np.testing.assert_array_equal(copy, stack)
    ws = Workspace(tmp_path / "ws")
    info = ws.create_dataset("vol", copy, None, ["background", "cell"])
    assert info.shape == stack.shape
    np.testing.assert_array_equal(ws.read_images("vol"), stack)


def test_cli_block_and_halo_go_with_a_zarr_output(tmp_path, stack, ckpt_path, capsys):
    from core.cli import main

    src = _zarr(tmp_path / "in.zarr", stack, (2, 40, 48))
    base = ["predict", "--checkpoint", str(ckpt_path), "--input", str(src), "--tile", "32"]
    assert main([*base, "--out", str(tmp_path / "m.tif"), "--block", "64"]) == 2
    assert "go with a Zarr output" in capsys.readouterr().err
    assert main([*base, "--out", str(tmp_path / "m.zarr"), "--block", "48"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["chunks"] == [2, 48, 48] and summary["world_size"] == 1 and summary["warnings"] == []
    assert zarr.open_array(str(tmp_path / "m.zarr")).shape == stack.shape


def test_cli_prob_with_a_zarr_output_writes_a_zarr_of_probabilities(tmp_path, stack, ckpt_path, capsys):
    """--prob is never dropped: with --out NAME.zarr it writes PROB.zarr block by block (the stack's
    probabilities, byte for byte, when a block is the slice), and a mismatch is refused before any work."""
    from core.cli import main

    src = _zarr(tmp_path / "in.zarr", stack, (2, 40, 48))
    base = ["predict", "--checkpoint", str(ckpt_path), "--input", str(src), "--tile", "32"]
    predict_stack(
        load_checkpoint(ckpt_path),
        stack,
        out_masks=tmp_path / "ref.tif",
        out_prob=tmp_path / "refp.tif",
        cfg=PredictConfig(tile=32),
    )
    assert main([*base, "--out", str(tmp_path / "m.zarr"), "--prob", str(tmp_path / "p.zarr")]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["prob"] == str(tmp_path / "p.zarr")
    prob = zarr.open_array(str(tmp_path / "p.zarr"))
    assert prob.shape == stack.shape and prob.dtype == np.uint8 and prob.chunks == (2, 80, 96)
    assert prob.attrs["segdash"]["kind"] == "probabilities" and prob.attrs["segdash"]["scale"] == 255
    np.testing.assert_array_equal(prob[:], tifffile.imread(tmp_path / "refp.tif"))
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "m.zarr"))[:], tifffile.imread(tmp_path / "ref.tif"))

    # smaller blocks: the probabilities are chunked as the masks and agree with them
    assert main([*base, "--out", str(tmp_path / "b.zarr"), "--prob", str(tmp_path / "bp.zarr"), "--block", "48"]) == 0
    capsys.readouterr()
    bp = zarr.open_array(str(tmp_path / "bp.zarr"))
    assert bp.chunks == (2, 48, 48)
    threshold = load_checkpoint(ckpt_path).decision.threshold
    masks = zarr.open_array(str(tmp_path / "b.zarr"))[:]
    assert ((bp[:] > threshold * 255) == (masks == 1)).mean() > 0.99

    # refused (exit 2, nothing written): a TIFF --prob beside a Zarr --out, a Zarr --prob beside a TIFF --out,
    # an existing --prob folder
    for out, prob_name, says in (
        ("x.zarr", "x.tif", "must name a .zarr folder"),
        ("x.tif", "x.zarr", "goes with a Zarr output"),
        ("x.zarr", "p.zarr", "already exists"),
    ):
        assert main([*base, "--out", str(tmp_path / out), "--prob", str(tmp_path / prob_name)]) == 2
        assert says in capsys.readouterr().err
        assert not (tmp_path / "x.zarr").exists() and not (tmp_path / "x.tif").exists()
    assert not list(tmp_path.glob(".*tmp*"))


def test_prob_zarr_of_a_three_class_model_holds_one_channel_per_class(tmp_path, stack):
    """K classes: PROB.zarr is (Z, K, Y, X), chunked (cz, K, block, block), and equals the stack's
    probability TIFF; its arg-max gives the masks written beside it."""
    from tests.synthetic import tiny_checkpoint

    ckpt = load_checkpoint(tiny_checkpoint(tmp_path / "k3.pt", ("bg", "a", "b"), seed=0))
    cfg = PredictConfig(tile=32)
    predict_stack(ckpt, stack, out_masks=tmp_path / "ref.tif", out_prob=tmp_path / "refp.tif", cfg=cfg)
    vol = open_volume(_zarr(tmp_path / "in.zarr", stack, (2, 40, 48)))
    summary = predict_volume(ckpt, vol, tmp_path / "m.zarr", cfg=cfg, prob=tmp_path / "p.zarr")
    prob = zarr.open_array(str(tmp_path / "p.zarr"))
    assert summary["prob"] == str(tmp_path / "p.zarr")
    assert prob.shape == (5, 3, 80, 96) and prob.chunks == (2, 3, 80, 96)
    assert prob.attrs["segdash"]["classes"] == 3 and prob.attrs["segdash"]["class_names"] == ["bg", "a", "b"]
    np.testing.assert_array_equal(prob[:], tifffile.imread(tmp_path / "refp.tif").reshape(prob.shape))
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "m.zarr"))[:], tifffile.imread(tmp_path / "ref.tif"))
    with pytest.raises(SegDashError, match="another name"):
        predict_volume(ckpt, vol, tmp_path / "same.zarr", cfg=cfg, prob=tmp_path / "same.zarr")
    assert not (tmp_path / "same.zarr").exists()
