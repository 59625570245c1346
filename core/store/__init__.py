"""Store layer: the workspace on disk and its SQLite catalog.

Owns the workspace root (datasets, versioned masks with their history, runs, prediction folders,
locks and the clean-up of what dead processes left, :mod:`~core.store.workspace`), what a lost
catalog is rebuilt from (:mod:`~core.store.recovery`, :mod:`~core.store.meta`) and its copies
(:mod:`~core.store.backups`), and all SQL with its schema migrations and state names
(:mod:`~core.store.catalog`, runs and epochs in :mod:`~core.store.run_rows`, rows rebuilt by repair in
:mod:`~core.store.recovered_rows`). May import: :mod:`core.data`;
never torch, the learning layers or streamlit.
"""
