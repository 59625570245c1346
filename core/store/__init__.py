"""Store layer: the workspace on disk and its SQLite catalog.

:class:`~core.store.workspace.Workspace` is the store's one front: datasets (created, renamed, deleted
in :mod:`~core.store.datasets`), versioned masks with their history (:mod:`~core.store.mask_history`),
runs, prediction folders, locks and the clean-up of what dead processes left; what a lost catalog is
rebuilt from (:mod:`~core.store.recovery`, :mod:`~core.store.meta`) and its copies
(:mod:`~core.store.backups`). All SQL is in the catalog modules: :mod:`~core.store.catalog`,
:mod:`~core.store.catalog_db`, :mod:`~core.store.mask_rows`, :mod:`~core.store.run_rows`,
:mod:`~core.store.recovered_rows`, :mod:`~core.store.schema`; code outside the store calls the
Workspace's named methods, never the catalog. May import: :mod:`core.data`;
never torch, the learning layers or streamlit.
"""
