"""The parser of ``python -m core`` (and ``segdash``): every command's options and help texts.

:mod:`core.cli` builds it with :func:`build_parser`, runs the chosen command and owns the exit codes;
the options here are a public interface (scripts rely on them): extend, don't rename.
"""

from __future__ import annotations

import argparse
from typing import Any, Callable

from . import datasets, measure, models

__all__ = ["build_parser"]


def _add_planar_choice(p: argparse.ArgumentParser) -> None:
    """``--as-stack`` / ``--as-colour``: how to read a 3- or 4-plane TIFF stored as planar RGB."""
    reading = p.add_mutually_exclusive_group()
    reading.add_argument(
        "--as-stack", action="store_true", help="read a 3- or 4-plane TIFF stored as planar RGB as that many slices"
    )
    reading.add_argument(
        "--as-colour",
        action="store_true",
        help="read a 3- or 4-plane TIFF stored as planar RGB as one colour image (to gray)",
    )
    reading.add_argument(
        "--as-image",
        action="store_true",
        help="read a TIFF whose array ends in an unnamed axis of one, such as (5, 100, 1), as its pages are "
        "stored (one 5 x 100 image); --as-stack reads its last two axes as Y and X (5 slices of 100 x 1)",
    )


def _command(
    sub: Any,
    common: argparse.ArgumentParser,
    name: str,
    func: Callable[[argparse.Namespace], dict],
    help: str,
    **kw: Any,
) -> argparse.ArgumentParser:
    """A sub-command that takes ``--workspace`` and runs ``func(args)``."""
    p = sub.add_parser(name, parents=[common], help=help, **kw)
    p.set_defaults(func=func)
    return p


def build_parser(prog: str, version: str) -> argparse.ArgumentParser:
    """The parser of every command; ``version`` is what ``--version`` prints after the program's name."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--workspace", metavar="DIR", default=None, help="workspace folder (default: $SEGDASH_WORKSPACE or ./workspace)"
    )
    common.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bars on standard error (notices and errors stay)"
    )
    parser = argparse.ArgumentParser(
        prog=prog,
        description="SegDash headless: import, export, train and predict.",
        epilog="Exit status: 0 ok, 2 refused input, 1 internal error. The last line of output is JSON.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = _command(
        sub,
        common,
        "import",
        datasets.run_import,
        help="import images (and masks) as a dataset",
        description="Import a TIFF stack, an image file, a ZIP, a folder, or a Zarr / OME-Zarr / N5 volume as a new "
        "dataset. The images are copied into the workspace (a Zarr volume a slab of chunks at a time), "
        "unless --by-reference: then a Zarr or N5 volume is read where it is, and must stay there.",
    )
    p.add_argument("--name", required=True, help="new dataset name (letters, digits, . _ -)")
    p.add_argument(
        "--images",
        required=True,
        metavar="PATH",
        help="TIFF stack, image file, ZIP, folder, or Zarr / OME-Zarr / N5 folder",
    )
    p.add_argument(
        "--by-reference",
        action="store_true",
        help="Zarr / OME-Zarr / N5 only: record the volume's path instead of copying it (no copy, no extra disk; "
        "the volume must stay where it is: moved or deleted, the dataset's images cannot be read, its masks "
        "are kept). Without it the volume is copied into the workspace as an uncompressed TIFF (its full size)",
    )
    p.add_argument("--masks", metavar="PATH", help="masks in the same forms, paired by slice or file name")
    p.add_argument("--channel", type=int, help="channel to keep for multi-channel images")
    p.add_argument(
        "--mask-threshold", type=float, metavar="T", help="binarise masks at T (for anti-aliased or JPEG masks)"
    )
    p.add_argument("--classes", metavar="A,B,...", help="class names, comma separated (index order)")
    p.add_argument(
        "--unlabeled-value",
        type=float,
        metavar="V",
        help="mask pixels equal to V are not labeled (sparse labels, e.g. from napari or ilastik); "
        "stored and exported as 255",
    )
    p.add_argument(
        "--pixel-size",
        metavar="Z,Y,X,UNIT",
        help="physical voxel size (or SIZE,UNIT for square pixels), when the files do not state it or "
        "state it wrongly; measurements use it",
    )
    _add_planar_choice(p)
    p.add_argument(
        "--series",
        type=int,
        metavar="N",
        help="a TIFF of several image series of different shapes: import series N (0 is the first)",
    )
    p.add_argument(
        "--remap-classes",
        action="store_true",
        help="map mask values with gaps (e.g. 0,1,2,7) to classes 0..K-1 in sorted order",
    )
    p.add_argument(
        "--merge-classes",
        action="store_true",
        help="let --mask-threshold merge masks of several classes into one foreground class",
    )
    p.add_argument(
        "--images-are-binary",
        action="store_true",
        help="import images that hold only two values (refused by default: they look like masks)",
    )

    p = _command(
        sub,
        common,
        "export",
        datasets.run_export,
        help="export a dataset's masks or a stored prediction",
        description="Export masks as a ZIP of PNGs named like their slices, a multipage "
        "TIFF, or the whole dataset as a re-importable ZIP or OME-Zarr; with --stored-prediction, "
        "a prediction stored in the workspace (Predictions page, predict_dataset).",
    )
    p.add_argument("--dataset", required=True)
    p.add_argument(
        "--format",
        choices=["zip", "tiff", "dataset", "ome-zarr", "prob-tiff", "csv"],
        default="zip",
        help="tiff: an ImageJ stack with one page per image slice (unlabeled slices empty), "
        "slice names as its labels, so it lies on the image stack in Fiji; ome-zarr: images + "
        "masks as labels (a .zarr folder, or a ZIP of one if FILE ends in .zip); prob-tiff, csv: "
        "with --stored-prediction only",
    )
    p.add_argument("--out", required=True, metavar="FILE")
    p.add_argument(
        "--labeled-only",
        action="store_true",
        help="tiff: write only the labeled slices (pages then do not line up with the images)",
    )
    p.add_argument("--prediction", metavar="RUN", help="ome-zarr: add this stored prediction as a second labels image")
    p.add_argument(
        "--stored-prediction",
        metavar="RUN",
        help="export this stored prediction instead of the masks: --format zip (PNGs), tiff (masks), "
        "prob-tiff (probabilities; ImageJ hyperstacks) or csv (per-slice scores against the masks)",
    )

    p = _command(
        sub,
        common,
        "train",
        models.run_train,
        help="train a model on a dataset",
        description="Train on the labeled slices of a dataset; checkpoints go to the workspace.",
    )
    p.add_argument("--dataset", required=True)
    p.add_argument("--epochs", type=int, help="number of epochs (default from the config)")
    p.add_argument("--config", metavar="FILE", help="JSON training config (partial: defaults + overrides)")
    p.add_argument("--resume", metavar="RUN", help="resume from this run's last checkpoint")
    p.add_argument("--val-slices", metavar="Z", help="validation slices, e.g. 100-119 (default: a block at the end)")
    p.add_argument("--test-slices", metavar="Z", help="test slices, never trained on, e.g. 130-164")
    p.add_argument("--context", type=int, metavar="N", help="2.5D: feed N neighbours each side as channels")
    p.add_argument(
        "--minutes",
        type=float,
        metavar="M",
        help="train for M minutes: the epochs are planned from their measured time (0: --epochs)",
    )

    p = _command(
        sub,
        common,
        "predict",
        models.run_predict,
        help="predict masks for a stack",
        description="Tiled prediction of a stack with a checkpoint, written slice by slice. "
        "When the input does not fit the checkpoint (its intensities lie outside "
        "the window the model was trained with, another bit depth), a 'warning: "
        "...' line goes to standard error and the JSON lists it under warnings; "
        "the exit status stays 0.",
    )
    p.add_argument(
        "--checkpoint",
        required=True,
        metavar="FILE",
        help="a run's best.pt / last.pt, or its bundle.zip (the weights inside are read), or a bioimage.io "
        "MODEL.zip exported by SegDash (its state dict weights, loaded as data)",
    )
    p.add_argument(
        "--input",
        required=True,
        metavar="STACK",
        help="TIFF stack, image file, ZIP or folder; Zarr, OME-Zarr or N5 folder",
    )
    p.add_argument(
        "--out",
        required=True,
        metavar="MASKS.tif",
        help="masks TIFF; a NAME.zarr folder is written chunk by chunk (any volume size; under torchrun "
        "the ranks share the chunks)",
    )
    p.add_argument(
        "--prob",
        metavar="PROB.tif",
        help="also write probabilities here (uint8, 255 = 1); with --out NAME.zarr a PROB.zarr folder, chunk by chunk",
    )
    p.add_argument("--tile", type=int, help="tile size (default: the checkpoint's patch size)")
    p.add_argument("--overlap", type=float, default=0.25, help="tile overlap fraction (default 0.25)")
    p.add_argument("--batch-size", type=int, default=4, help="tiles per forward pass")
    p.add_argument("--tta", action="store_true", help="average over flips (4x the time)")
    p.add_argument("--dihedral", action="store_true", help="with --tta: the 8 dihedral transforms (8x the time)")
    p.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="probability threshold for binary models (default: the checkpoint's, tuned on validation; else 0.5)",
    )
    p.add_argument("--no-cleanup", action="store_true", help="skip the checkpoint's small-object / hole cleanup")
    p.add_argument("--channel", type=int, help="channel to keep for multi-channel input")
    p.add_argument("--block", type=int, metavar="N", help="Zarr output: y/x side of its chunks, a block each (1024)")
    p.add_argument("--halo", type=int, metavar="N", help="Zarr output: context around a block (a quarter tile)")
    p.add_argument(
        "--trust-code",
        action="store_true",
        help="run a bioimage.io package's TorchScript weights when it has no SegDash state dict weights: "
        "TorchScript is a program that can read and overwrite your files; only for packages you trust",
    )
    _add_planar_choice(p)

    p = _command(
        sub,
        common,
        "export-model",
        models.run_export_model,
        help="export a checkpoint as a bioimage.io model",
        description="Write a checkpoint as a bioimage.io model package (ZIP: rdf.yaml, state dict, "
        "TorchScript and ONNX weights, test and sample tensors from the training data, cover, the "
        "tuned decision, an output halo for tiling) that Fiji "
        "(deepImageJ), ilastik, napari and BiaPy run; python -m core predict reads "
        "it back. The workspace must hold the training dataset (test input).",
    )
    p.add_argument("--checkpoint", required=True, metavar="FILE", help="SegDash checkpoint (best.pt, last.pt)")
    p.add_argument("--format", choices=["bioimageio"], default="bioimageio")
    p.add_argument("--out", required=True, metavar="MODEL.zip")
    p.add_argument("--authors", metavar="A,B,...", help="author names, comma separated (required)")
    p.add_argument("--maintainers", metavar="GITHUB_USER,...", help="GitHub user names of the package's maintainers")
    p.add_argument("--model-version", default="0.1.0", metavar="V", help="the model's version (default 0.1.0)")
    p.add_argument("--license", default="CC-BY-4.0", help="SPDX licence identifier (default CC-BY-4.0)")
    p.add_argument("--name", help="model name (default: SegDash <dataset> <run>)")
    p.add_argument("--no-onnx", action="store_true", help="TorchScript weights only")
    p.add_argument(
        "--test",
        action="store_true",
        help="run bioimageio.core's test_model on the package (offline) and fail if it does not pass",
    )

    p = _command(
        sub,
        common,
        "measure",
        measure.run_measure,
        help="measure the objects of masks or a prediction (CSV, Excel)",
        description="Objects of each foreground class (connected components; 2D: per slice, 8-connected; "
        "3D: through consecutive slices, 26-connected) of a dataset's saved masks, a stored prediction "
        "(--prediction) or a masks TIFF/Zarr from predict (--masks), measured per object (pixels and, "
        "when the pixel size is known, physical units), per slice and per dataset. With --prediction "
        "the JSON also holds the trust figures: the prediction against human truth on its model's test "
        "(else validation) slices.",
    )
    p.add_argument("--dataset", required=True)
    source = p.add_mutually_exclusive_group()
    source.add_argument("--prediction", metavar="RUN", help="a stored prediction (as the Predictions page names it)")
    source.add_argument("--masks", metavar="FILE", help="a masks TIFF or Zarr written by python -m core predict")
    p.add_argument("--mode", choices=["2d", "3d"], default="2d", help="objects per slice (2d) or through the stack")
    p.add_argument("--connectivity", type=int, metavar="C", help="neighbours: 1 faces .. 2 (2d) / 3 (3d, default)")
    p.add_argument("--split", action="store_true", help="split touching objects (watershed)")
    p.add_argument("--min-distance", type=int, default=5, metavar="PX", help="--split: seeds at least PX apart (5)")
    p.add_argument(
        "--block",
        type=int,
        metavar="N",
        help="3d: N slices at a time, objects crossing blocks merged (memory flat in depth; no surface/axes)",
    )
    p.add_argument("--pixel-size", metavar="Z,Y,X,UNIT", help="override the dataset's pixel size (or SIZE,UNIT)")
    p.add_argument("--out", required=True, metavar="objects.csv|objects.xlsx")
    p.add_argument(
        "--labels-out",
        metavar="LABELS.tif|LABELS.zarr",
        help="also write the instance label image (ImageJ TIFF, or OME-Zarr labels beside the raw image)",
    )

    p = _command(sub, common, "list", datasets.run_list, help="list datasets and runs (with their state)")

    p = _command(
        sub,
        common,
        "delete",
        datasets.run_delete,
        help="delete a dataset (asks for --yes)",
        description="Delete a dataset: its images and every mask version. Training runs and "
        "their checkpoints are kept. Without --yes nothing is deleted (exit 2).",
    )
    p.add_argument("--dataset", required=True)
    p.add_argument("--yes", action="store_true", help="really delete")

    p = _command(sub, common, "repair", datasets.run_repair, **datasets.REPAIR_PARSER)
    p.add_argument("--from-backup", metavar="FILE", help=datasets.FROM_BACKUP_HELP)
    return parser
