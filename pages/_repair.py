"""The Repair action (UI only): the button that rebuilds the catalog from the workspace's folders
(:func:`core.workflow.repair.repair_workspace`), shown by the frame when the catalog is damaged and by
Home when folders hold what the catalog does not list."""

from __future__ import annotations

from typing import Callable

import streamlit as st

from core.errors import SegDashError
from core.store.workspace import Workspace, default_root
from core.workflow.repair import repair_needed, repair_workspace
from pages._common import flash


def repair_button(on_done: Callable[[], None] = lambda: None, key: str = "repair_workspace") -> None:
    """A button that repairs the workspace (in its callback, before the page runs again), then says
    what it recovered on the next render."""
    st.button(
        "Repair the workspace",
        key=key,
        type="primary",
        icon=":material/build:",
        help="Rebuilds the catalog from the dataset and run folders (python -m core repair): only adds what is "
        "missing; a damaged catalog file is moved aside, never deleted.",
        on_click=_repair,
        args=(on_done,),
    )


def _repair(on_done: Callable[[], None]) -> None:
    try:
        report = repair_workspace(default_root())
        message = ("success", summary(report))
    except SegDashError as exc:
        message = ("error", str(exc))
    on_done()
    flash(*message)


def summary(report: dict) -> str:
    """What a repair did, in a sentence or two (paths relative to the workspace)."""
    text = (
        f"Repaired: catalog {report['catalog']}. Recovered {len(report['datasets'])} dataset(s)"
        f"{' (' + ', '.join(report['datasets']) + ')' if report['datasets'] else ''}, "
        f"{report['mask_versions']} mask version(s) and {len(report['runs'])} run(s)."
    )
    if report["not_recovered"]:
        text += " Not recovered: " + "; ".join(f"{i['path']} ({i['why']})" for i in report["not_recovered"][:5])
    return text.replace(report["workspace"], "the workspace")  # no server path in a browser


def repair_banner(ws: Workspace) -> None:
    """On Home: a warning with the Repair button when the folders hold what the catalog does not list."""
    need = repair_needed(ws)
    if need:
        st.warning(f"{need} Repair lists them again; nothing in the folders is changed.", icon=":material/warning:")
        repair_button()
