"""A small Streamlit component (components v2) for the Label page: keyboard shortcuts and the width
of the space the canvas may use.

UI only. The component renders nothing visible. In the browser it

* listens for keys on the page (not while a text field, select box or slider has the focus) and
  sends the actions bound to the keys pressed as the state value ``action``: ``{page, items}``
  with ``items`` the last 20 ``[number, action]`` of this page load (see :func:`new_actions`);
* reports the width of the column it sits in as the state value ``width`` (again when the window
  or the sidebar changes it), so the canvas can use the whole column;
* turns dragging on the overview picture (the image with the zoom window outlined) into the
  trigger value ``pan``: ``[row, col]`` of the new window centre, in image pixels.

Python gets both through ``st.session_state[key]`` in the ``on_action_change`` /
``on_pan_change`` callbacks; under ``AppTest`` (no browser) nothing is sent and the page falls
back to its buttons and a default width.
"""

from __future__ import annotations

from typing import Any, Callable

import streamlit as st

__all__ = ["label_keys", "key_hint", "value", "new_actions"]

_JS = r"""
export default function (component) {
  const { data, setStateValue, setTriggerValue, parentElement } = component;
  const keymap = data.keys || {};
  if (!window.__segdashKeyLog)
    window.__segdashKeyLog = { page: Math.random().toString(36).slice(2), seq: 0, items: [] };
  // parentElement is the component's shadow root (isolated styles): measure and draw in its div
  const root = parentElement.querySelector('.pan-map');
  let lastWidth = 0;
  const report = () => {
    const width = Math.floor(root.getBoundingClientRect().width);
    if (width > 0 && Math.abs(width - lastWidth) >= 8) { lastWidth = width; setStateValue('width', width); }
  };
  const ro = new ResizeObserver(report);
  if (data.measure) { ro.observe(root); report(); }
  const typing = (t) => {
    if (!t || !t.tagName) return false;
    const tag = t.tagName.toLowerCase();
    if (tag === 'textarea' || t.isContentEditable) return true;
    if (tag === 'input') return !['radio', 'checkbox', 'button'].includes((t.type || '').toLowerCase());
    return t.getAttribute && t.getAttribute('role') === 'slider';
  };
  const onKey = (e) => {
    if (e.repeat && !e.key.startsWith('Arrow')) return;
    if (typing(e.target)) return;
    const parts = [];
    if (e.ctrlKey || e.metaKey) parts.push('ctrl');
    if (e.altKey) return;
    if (e.shiftKey && (parts.length || e.key.length > 1)) parts.push('shift');
    parts.push(e.key.toLowerCase());
    const action = keymap[parts.join('+')];
    if (!action) return;
    e.preventDefault();
    e.stopPropagation();
    // every key goes into a numbered log of the last 20, sent whole as state: a message Streamlit
    // coalesces while the script runs still carries the keys before it, and Python runs each once
    const log = window.__segdashKeyLog;
    log.seq += 1;
    log.items.push([log.seq, action]);
    log.items = log.items.slice(-20);
    setStateValue('action', { page: log.page, items: log.items.slice() });
  };
  const w = window;
  if (Object.keys(keymap).length) {
    if (w.__segdashLabelKeys) document.removeEventListener('keydown', w.__segdashLabelKeys, true);
    w.__segdashLabelKeys = onKey;
    document.addEventListener('keydown', onKey, true);
  }
  // the overview: drag (or click) to move the zoom window
  const map = root;
  let cleanupMap = () => {};
  if (map && data.overview) {
    map.innerHTML = '';
    const img = document.createElement('img');
    img.src = data.overview.src;
    img.style.width = '100%';
    img.style.display = 'block';
    img.draggable = false;
    const box = document.createElement('div');
    box.className = 'pan-box';
    map.appendChild(img);
    map.appendChild(box);
    const [H, W] = data.overview.shape;
    const [y0, x0, wh, ww] = data.overview.window;
    const place = (cy, cx) => {
      box.style.left = (100 * (cx - ww / 2) / W) + '%';
      box.style.top = (100 * (cy - wh / 2) / H) + '%';
    };
    box.style.width = (100 * ww / W) + '%';
    box.style.height = (100 * wh / H) + '%';
    place(y0 + wh / 2, x0 + ww / 2);
    let dragging = false;
    const at = (e) => {
      const r = img.getBoundingClientRect();
      const cx = Math.min(Math.max((e.clientX - r.left) / r.width * W, ww / 2), W - ww / 2);
      const cy = Math.min(Math.max((e.clientY - r.top) / r.height * H, wh / 2), H - wh / 2);
      return [cy, cx];
    };
    const down = (e) => { dragging = true; map.setPointerCapture(e.pointerId); place(...at(e)); e.preventDefault(); };
    const move = (e) => { if (dragging) place(...at(e)); };
    const up = (e) => {
      if (!dragging) return;
      dragging = false;
      const [cy, cx] = at(e);
      setTriggerValue('pan', [Math.round(cy), Math.round(cx)]);
    };
    map.addEventListener('pointerdown', down);
    map.addEventListener('pointermove', move);
    map.addEventListener('pointerup', up);
    cleanupMap = () => {
      map.removeEventListener('pointerdown', down);
      map.removeEventListener('pointermove', move);
      map.removeEventListener('pointerup', up);
    };
  }
  return () => {
    ro.disconnect();
    cleanupMap();
    document.removeEventListener('keydown', onKey, true);
    if (w.__segdashLabelKeys === onKey) w.__segdashLabelKeys = null;
  };
}
"""

_CSS = """
.pan-map { position: relative; width: 100%; cursor: move; touch-action: none; user-select: none; }
.pan-box { position: absolute; border: 2px solid #ff3c3c; box-shadow: 0 0 0 1px #fff; pointer-events: none; }
"""

_component = st.components.v2.component("segdash_label_keys", html='<div class="pan-map"></div>', css=_CSS, js=_JS)


def label_keys(
    keys: dict[str, str],
    *,
    key: str,
    on_action: Callable[[], None] = lambda: None,
    on_pan: Callable[[], None] = lambda: None,
    overview: dict[str, Any] | None = None,
    measure: bool = False,
) -> Any:
    """Render the component.

    Args:
        keys: key (``"ctrl+s"``, ``"b"``, ``"arrowleft"``) to action name; ``{}`` listens to none.
        key: the widget key; ``st.session_state[key]`` holds ``action``, ``pan`` and ``width``.
        overview: ``{"src": data URL, "shape": [H, W], "window": [y0, x0, h, w]}`` shows the
            draggable overview.
        measure: report the column's width.
    """
    return _component(
        data={"keys": keys, "overview": overview, "measure": measure},
        key=key,
        on_action_change=on_action,
        on_pan_change=on_pan,
        on_width_change=lambda: None,
        width="stretch",
        height="content",
    )


def value(key: str, name: str) -> Any:
    """The component's value ``name`` (``action``, ``pan``, ``width``) from session state, or ``None``."""
    state = st.session_state.get(key)
    if state is None:
        return None
    try:
        return state.get(name) if hasattr(state, "get") else getattr(state, name, None)
    except (AttributeError, KeyError):
        return None


def new_actions(key: str, seen_key: str, name: str = "action") -> list:
    """The actions of ``st.session_state[key]`` (state value ``name``) not run yet (numbers above the one
    kept in ``seen_key``): action names, or ``(action, where)`` for items ``[number, action, where]``."""
    log = value(key, name) or {}
    if not isinstance(log, dict):
        return []
    page = log.get("page")
    items = [i for i in log.get("items") or [] if isinstance(i, (list, tuple)) and len(i) >= 2]
    items = [i for i in items if isinstance(i[0], (int, float)) and isinstance(i[1], str)]
    seen = st.session_state.get(seen_key)
    last = seen[1] if seen and seen[0] == page else 0
    if items:
        st.session_state[seen_key] = (page, max(i[0] for i in items))
    return [(i[1], str(i[2])) if len(i) > 2 else i[1] for i in items if i[0] > last]


def key_hint(keys: dict[str, str], action: str) -> str:
    """The key(s) bound to ``action``, written for a button label: ``Ctrl+S``, ``B``, ``]``."""
    names = [k for k, a in keys.items() if a == action]
    return " / ".join("+".join(p.capitalize() if len(p) > 1 else p.upper() for p in k.split("+")) for k in names[:2])
