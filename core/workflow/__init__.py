"""Workflow layer: the user's steps, as the pages and the command line call them.

Owns import with image/mask pairing (:mod:`~core.workflow.ingest`), exports
(:mod:`~core.workflow.export`), the bundled sample (:mod:`~core.workflow.sample`), reviewing a
prediction (:mod:`~core.workflow.review`), the assisted starting mask
(:mod:`~core.workflow.assist`) and the next-step guide (:mod:`~core.workflow.guide`). May import:
every layer but :mod:`core.view`; torch only inside the functions that need it, so importing a
workflow module stays light (``core.workflow.review`` imports neither torch nor MONAI).
"""
