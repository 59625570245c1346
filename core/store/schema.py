"""The catalog's SQLite schema: the tables of the first version, the columns added since (added when
an older workspace is opened), tables created on first use, and the state names the rows hold."""

SLICE_STATUSES = ("unlabeled", "labeled", "edited", "from-prediction")
# a run's state; ``interrupted`` is never written by a worker: it is what an active run whose owner
# process is gone (killed, server restarted) reads as
RUN_STATES = ("queued", "running", "stopping", "done", "failed", "stopped", "interrupted")
ACTIVE_RUN_STATES = ("queued", "running", "stopping")
# where a run was started: the dashboard, ``python -m core train``, a Python script, torchrun ("" for
# runs recorded before origins were)
RUN_ORIGINS = ("app", "cli", "python", "torchrun", "live")  # live: a round of "Train on my strokes"

SCHEMA = """
CREATE TABLE IF NOT EXISTS datasets (
    name TEXT PRIMARY KEY,
    created REAL NOT NULL,
    n_slices INTEGER NOT NULL,
    height INTEGER NOT NULL,
    width INTEGER NOT NULL,
    dtype TEXT NOT NULL,
    class_names TEXT NOT NULL,
    source TEXT NOT NULL DEFAULT '',
    notices TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS slices (
    dataset TEXT NOT NULL REFERENCES datasets(name) ON DELETE CASCADE ON UPDATE CASCADE,
    z INTEGER NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 0,
    updated REAL NOT NULL,
    PRIMARY KEY (dataset, z)
);
CREATE TABLE IF NOT EXISTS mask_versions (
    dataset TEXT NOT NULL REFERENCES datasets(name) ON DELETE CASCADE ON UPDATE CASCADE,
    z INTEGER NOT NULL,
    version INTEGER NOT NULL,
    status TEXT NOT NULL,
    file TEXT NOT NULL,
    created REAL NOT NULL,
    undone INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (dataset, z, version)
);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    dataset TEXT NOT NULL,
    created REAL NOT NULL,
    state TEXT NOT NULL,
    config TEXT NOT NULL,
    device TEXT NOT NULL DEFAULT '',
    dataset_version TEXT NOT NULL DEFAULT '',
    best_checkpoint TEXT NOT NULL DEFAULT '',
    last_checkpoint TEXT NOT NULL DEFAULT '',
    best_dice REAL,
    wall_time REAL NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT '',
    extra TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS dataset_claims (
    name TEXT PRIMARY KEY,
    owner_pid INTEGER NOT NULL,
    owner_host TEXT NOT NULL,
    folder TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS epochs (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    epoch INTEGER NOT NULL,
    metrics TEXT NOT NULL,
    PRIMARY KEY (run_id, epoch)
);
"""
# columns added after the first release: (table, column, declaration); added when missing, so a
# workspace made by an older SegDash opens (and stays readable by it: only columns are added)
ADDED_COLUMNS = (
    ("runs", "owner_pid", "INTEGER"),  # process that trains the run
    ("runs", "owner_host", "TEXT"),  # and its host
    ("runs", "heartbeat", "REAL"),  # last time that process said it was alive
    ("runs", "stop_requested", "INTEGER NOT NULL DEFAULT 0"),  # a stop asked through the catalog
    ("runs", "origin", "TEXT NOT NULL DEFAULT ''"),  # one of RUN_ORIGINS
    ("runs", "progress", "TEXT NOT NULL DEFAULT '{}'"),  # JSON: epoch, step, ETA at the last heartbeat
    ("mask_versions", "source", "TEXT NOT NULL DEFAULT ''"),  # imported, drawn, accepted:<run>, restored:v<n>
    ("mask_versions", "parent", "INTEGER"),  # the version it was drawn on (0: an unlabeled slice)
    ("mask_versions", "labeled", "REAL"),  # share of pixels labeled (NULL: complete, before sparse labels)
    ("mask_versions", "accepted_from", "TEXT"),  # the run its accepted pixels came from (core.data.provenance)
)
PIXEL_SCHEMA = """
CREATE TABLE IF NOT EXISTS dataset_pixel_size (
    dataset TEXT PRIMARY KEY REFERENCES datasets(name) ON DELETE CASCADE ON UPDATE CASCADE,
    z REAL NOT NULL,
    y REAL NOT NULL,
    x REAL NOT NULL,
    unit TEXT NOT NULL
)"""
# a dataset imported by reference: its images are read from a Zarr / OME-Zarr volume outside the
# workspace (no images.tif); own table, created on first use, so older workspaces open unchanged
VOLUME_SCHEMA = """
CREATE TABLE IF NOT EXISTS dataset_volumes (
    dataset TEXT PRIMARY KEY REFERENCES datasets(name) ON DELETE CASCADE ON UPDATE CASCADE,
    path TEXT NOT NULL,
    channel INTEGER
)"""
