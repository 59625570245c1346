// SegDash's label canvas (a components-v2 module, see pages/_label_canvas.py). Strokes are drawn and
// kept here, in the browser, and sent to the server in batches: with every shortcut, before a click
// anywhere else on the page, and as a draft a few seconds after the last stroke. The list lives in
// localStorage too, so a reload loses nothing. The server answers with the ids it saved or cleared
// (data.gone); only then is a stroke dropped here.
const IN_FRAGMENT = new Set(['save', 'undo', 'redo']); // the rest rerun the whole page

export default function (component) {
  const { data, setStateValue, parentElement } = component;
  const W = window;
  let S = W.__segdashCanvas;
  if (!S || S.root !== parentElement || !S.stage.isConnected) {
    if (S) S.detach();
    S = W.__segdashCanvas = make(parentElement);
  }
  S.setState = setStateValue;
  S.update(data);
}

function make(root) {
  const W = window;
  // S.data: what the server sent last; S.view: the data whose pictures are on screen. A stroke belongs
  // to the slice of S.view (the one the user sees), also while a new slice's picture is still decoding.
  const S = { root, data: null, view: null, oneToOne: false, drawing: null, poly: null, later: null, dirty: false };
  W.__segdashMounts = (W.__segdashMounts || 0) + 1; // how often the canvas was built (a signal for tests)
  S.page = Math.random().toString(36).slice(2);
  S.seq = 0;
  S.items = [];
  S.drawn = 0; // strokes finished on this page (a signal for tests)
  S.sends = 0;
  const wrap = root.querySelector('.segdash-canvas');
  wrap.innerHTML = '';
  const stage = document.createElement('div');
  stage.className = 'stage';
  const img = document.createElement('img');
  img.draggable = false;
  const tint = document.createElement('img'); // the saved mask, a layer of its own
  tint.draggable = false;
  const ink = document.createElement('canvas');
  const note = document.createElement('div');
  note.className = 'note';
  stage.appendChild(img);
  stage.appendChild(tint);
  stage.appendChild(ink);
  wrap.appendChild(stage);
  wrap.appendChild(note);
  Object.assign(S, { wrap, stage, img, ink, note });

  // -- the strokes: one list for every slice, in drawing order --------------------------------
  let store = { strokes: [], redo: {} };
  const storeKey = () => 'segdash-label:' + (S.data ? S.data.scope : '');
  const load = () => {
    if (!W.__segdashStore || W.__segdashStore.scope !== S.data.scope) {
      let saved = [];
      try { saved = JSON.parse(W.localStorage.getItem(storeKey()) || '[]'); } catch (e) { saved = []; }
      W.__segdashStore = { scope: S.data.scope, strokes: Array.isArray(saved) ? saved : [], redo: {} };
      if (W.__segdashStore.strokes.length) S.dirty = true; // a draft from before a reload: tell the server
    }
    store = W.__segdashStore;
  };
  const persist = () => {
    try { W.localStorage.setItem(storeKey(), JSON.stringify(store.strokes)); } catch (e) { /* full: the server has the drafts */ }
  };
  S.store = () => store;
  const mine = () => store.strokes.filter((s) => s.key === S.view.key);
  // the version a stroke on the shown slice is drawn on: the newest the server named for that slice
  const version = () => (S.data.key === S.view.key ? S.data.version : S.view.version);

  // -- pictures: kept by id (the newest 24), so the server sends a slice's picture once --------
  if (!W.__segdashPics) W.__segdashPics = new Map();
  const pics = W.__segdashPics;
  const remember = (id, src) => {
    pics.delete(id);
    pics.set(id, src);
    while (pics.size > 24) pics.delete(pics.keys().next().value);
  };

  const send = (action, whole) => {
    if (action) {
      S.seq += 1;
      S.items.push([S.seq, action, S.view.key]);
      S.items = S.items.slice(-20);
    }
    S.dirty = false;
    S.sends += 1;
    const ui = { page: S.page, n: S.sends, items: S.items.slice(), strokes: store.strokes.slice(), have: [...pics.keys()] };
    // a shortcut that changes more than the canvas (a slice, a tool, the page's refresh after a save)
    // goes through the relay, a component outside the canvas's fragment: the whole page reruns
    if ((whole || (action && !IN_FRAGMENT.has(action))) && W.__segdashRelay) W.__segdashRelay(ui); else S.setState('ui', ui);
  };
  S.send = send;

  // -- layout: fit the window (whole-pixel magnification when it fits), or 1:1 ----------------
  S.layout = () => {
    const [, , h, w] = S.view.window;
    const avail = Math.max(200, wrap.clientWidth || 800);
    const top = stage.getBoundingClientRect().top + W.scrollY;
    const availH = Math.max(200, W.innerHeight - Math.min(top, W.innerHeight / 2) - 40);
    let scale = Math.min(avail / w, availH / h);
    if (scale >= 1) scale = Math.max(1, Math.floor(scale));
    if (S.oneToOne) scale = 1;
    S.scale = scale;
    const cw = Math.max(1, Math.round(w * scale)), ch = Math.max(1, Math.round(h * scale));
    stage.style.width = cw + 'px';
    stage.style.height = ch + 'px';
    img.style.imageRendering = tint.style.imageRendering = scale > 1 ? 'pixelated' : 'auto';
    const dpr = W.devicePixelRatio || 1;
    ink.width = Math.round(cw * dpr);
    ink.height = Math.round(ch * dpr);
    S.redraw();
  };

  // -- painting strokes on the ink layer -------------------------------------------------------
  const ctx = ink.getContext('2d');
  const toView = (s) => {
    // a stroke's canvas points in the current window's image pixels
    const [fy0, fx0, fh, fw, fch, fcw] = s.frame;
    const [y0, x0] = S.view.window;
    const sx = fw / fcw, sy = fh / fch;
    return (x, y) => [fx0 - x0 + x * sx, fy0 - y0 + y * sy, (sx + sy) / 2];
  };
  const paint = (s) => {
    const o = s.obj;
    const map = toView(s);
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    ctx.strokeStyle = o.stroke;
    ctx.beginPath();
    if (o.type === 'Polygon') {
      o.points.forEach((p, i) => { const [x, y] = map(p.x, p.y); i ? ctx.lineTo(x, y) : ctx.moveTo(x, y); });
      ctx.closePath();
      ctx.fillStyle = o.fill || o.stroke;
      ctx.fill();
      ctx.lineWidth = Math.max(o.strokeWidth * map(0, 0)[2], 1 / S.scale);
      ctx.stroke();
      return;
    }
    let last = null;
    for (const c of o.path) {
      const [x, y, f] = map(c[1], c[2]);
      ctx.lineWidth = Math.max(o.strokeWidth * f, 1 / S.scale);
      c[0] === 'M' ? ctx.moveTo(x, y) : ctx.lineTo(x, y);
      last = [x, y];
    }
    if (o.path.length === 1 && last) ctx.lineTo(last[0] + 0.01, last[1]);
    ctx.stroke();
  };
  S.redraw = () => {
    const dpr = W.devicePixelRatio || 1;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, ink.width, ink.height);
    ctx.setTransform(S.scale * dpr, 0, 0, S.scale * dpr, 0, 0);
    for (const s of mine()) paint(s);
    if (S.drawing) paint(S.drawing);
    if (S.poly && S.poly.length) {
      ctx.strokeStyle = S.data.color;
      ctx.lineWidth = 2 / S.scale;
      ctx.beginPath();
      S.poly.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
      ctx.stroke();
    }
    const n = mine().length;
    const others = [...new Set(store.strokes.filter((s) => s.key !== S.view.key && s.key.startsWith(S.view.dataset + '/')).map((s) => s.key.split('/').pop()))];
    note.textContent = `${n} unsaved stroke(s) on this slice` + (others.length ? `, on slice(s) ${others.join(', ')}` : '')
      + ` · ${S.oneToOne ? '1:1' : 'fit to window'} (${Math.round(S.scale * 100)} %, key 1 toggles)`;
    wrap.dataset.shown = S.view.key;
    wrap.dataset.pending = String(n);
    wrap.dataset.stamp = S.view.stamp;
  };

  // -- drawing -----------------------------------------------------------------------------------
  const at = (e) => {
    const r = ink.getBoundingClientRect();
    return [(e.clientX - r.left) / S.scale, (e.clientY - r.top) / S.scale];
  };
  const frame = () => { const [y0, x0, h, w] = S.view.window; return [y0, x0, h, w, h, w]; };
  const newId = () => 's-' + S.page + '-' + Date.now().toString(36) + '-' + Math.random().toString(36).slice(2, 8);
  const finish = (stroke) => {
    store.strokes.push(stroke);
    store.redo[stroke.key] = [];
    persist();
    S.drawn += 1;
    S.dirty = true;
    S.lastStroke = performance.now();
    S.redraw();
  };
  const down = (e) => {
    if (e.button !== 0 || !S.view) return;
    e.preventDefault();
    const [x, y] = at(e);
    if (S.data.tool === 'Polygon fill') {
      if (!S.poly) S.poly = [];
      const first = S.poly[0];
      if (first && S.poly.length >= 3 && Math.hypot(first[0] - x, first[1] - y) * S.scale < 8) return closePoly();
      S.poly.push([x, y]);
      S.redraw();
      return;
    }
    ink.setPointerCapture(e.pointerId);
    S.drawing = { id: newId(), key: S.view.key, base: version(), frame: frame(),
      obj: { type: 'Path', stroke: S.data.color, strokeWidth: S.data.brush, path: [['M', x, y]] } };
    S.last = [x, y];
    S.redraw();
  };
  const move = (e) => {
    if (!S.drawing) return;
    const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [e];
    for (const ev of events.length ? events : [e]) {
      const [x, y] = at(ev);
      if (Math.hypot(x - S.last[0], y - S.last[1]) < 0.5) continue;
      S.drawing.obj.path.push(['L', x, y]);
      // draw just the new segment: the stroke is on screen in this frame
      ctx.lineCap = 'round';
      ctx.strokeStyle = S.data.color;
      ctx.lineWidth = S.data.brush;
      ctx.beginPath();
      ctx.moveTo(S.last[0], S.last[1]);
      ctx.lineTo(x, y);
      ctx.stroke();
      S.last = [x, y];
    }
  };
  const up = () => {
    if (!S.drawing) return;
    const s = S.drawing;
    S.drawing = null;
    if (s.obj.path.length === 1) s.obj.path.push(['L', s.obj.path[0][1], s.obj.path[0][2]]);
    finish(s);
    if (S.swap) { const f = S.swap; S.swap = null; f(); }
    if (S.later) { const d = S.later; S.later = null; S.update(d); }
  };
  const closePoly = () => {
    const pts = S.poly;
    S.poly = null;
    if (!pts || pts.length < 3) return S.redraw();
    finish({ id: newId(), key: S.view.key, base: version(), frame: frame(),
      obj: { type: 'Polygon', stroke: S.data.color, fill: S.data.fill, strokeWidth: 1,
        points: pts.map(([x, y]) => ({ x, y })) } });
  };
  ink.addEventListener('pointerdown', down);
  ink.addEventListener('pointermove', move);
  ink.addEventListener('pointerup', up);
  ink.addEventListener('pointercancel', up);
  ink.addEventListener('dblclick', () => S.poly && closePoly());

  // -- keys: work whatever has the focus, never type into a box, Ctrl+S never reaches the browser ---
  const typing = (t) => {
    if (!t || !t.tagName) return false;
    const tag = t.tagName.toLowerCase();
    if (tag === 'textarea' || t.isContentEditable) return true;
    if (tag !== 'input') return false;
    if (t.getAttribute('role') === 'combobox') return t.getAttribute('aria-expanded') === 'true';
    return !['radio', 'checkbox', 'button', 'range'].includes((t.type || '').toLowerCase());
  };
  const onKey = (e) => {
    if (!S.view || !stage.isConnected) return;
    if (e.key === 'Escape' && S.poly) { S.poly = null; S.redraw(); return; }
    if (e.altKey) return;
    const parts = [];
    if (e.ctrlKey || e.metaKey) parts.push('ctrl');
    if (e.shiftKey && (parts.length || e.key.length > 1)) parts.push('shift');
    parts.push(e.key.toLowerCase());
    const name = parts.join('+');
    const action = S.data.keys[name];
    if (!action) return;
    const t = e.target;
    if (typing(t) && action !== 'save') return;
    const slider = t && t.getAttribute && t.getAttribute('role') === 'slider';
    if (slider && name.startsWith('arrow')) return;
    e.preventDefault();
    e.stopPropagation();
    if (e.repeat && !name.startsWith('arrow')) return;
    if (t && t.blur && t !== document.body && t.getAttribute && t.getAttribute('role') === 'combobox') t.blur();
    act(action);
  };
  const act = (action) => {
    const key = S.view.key;
    if (action === 'fit') { S.oneToOne = !S.oneToOne; S.layout(); return; }
    if (action === 'undo' && mine().length) {
      const s = mine().pop();
      store.strokes = store.strokes.filter((x) => x.id !== s.id);
      (store.redo[key] = store.redo[key] || []).push(s);
      persist();
      S.redraw();
      return send('undo_stroke');
    }
    if (action === 'redo' && (store.redo[key] || []).length) {
      store.strokes.push(store.redo[key].pop());
      persist();
      S.redraw();
      return send('redo_stroke');
    }
    send(action);
  };
  // a press on a button (Save, Undo, Clear, Train on my strokes, Next) first hands the server the strokes
  // drawn since; not on a select box, whose open list a rerun would redraw under the pointer
  const onPointer = (e) => {
    const t = e.composedPath ? e.composedPath()[0] : e.target;
    // (through the relay: a button reruns the whole page, and a fragment's rerun asked for just before
    // it lost the button's click in the browser test)
    if (S.dirty && t && t.closest && t.closest('button') && !stage.contains(t)) send(null, true);
  };
  const listOpen = () => !!document.querySelector('[role="combobox"][aria-expanded="true"], [role="listbox"]');
  const tick = () => {
    if (S.dirty && !S.drawing && !listOpen() && performance.now() - (S.lastStroke || 0) > 3000) send(null);
  };
  const onResize = () => S.view && S.layout();
  document.addEventListener('keydown', onKey, true);
  document.addEventListener('pointerdown', onPointer, true);
  W.addEventListener('resize', onResize);
  const timer = W.setInterval(tick, 1000);
  S.detach = () => {
    document.removeEventListener('keydown', onKey, true);
    document.removeEventListener('pointerdown', onPointer, true);
    W.removeEventListener('resize', onResize);
    W.clearInterval(timer);
  };

  // -- new data from the server -----------------------------------------------------------------
  // The pictures on screen, the layout and the slice strokes go to (S.view) change together, once the
  // new pictures are decoded: until then the user sees the old slice, and strokes go to the old slice.
  const show = (data) => {
    const old = S.view;
    S.view = data;
    if (old && old.key !== data.key) S.poly = null;
    if (!old || old.window.join() !== data.window.join() || old.key !== data.key) S.layout(); else S.redraw();
    // a save or undo reran only the canvas's fragment: now that its tint is on screen, the whole page
    if (data.refresh && S.refreshed !== data.refresh) { S.refreshed = data.refresh; send('refresh'); }
  };
  S.update = (data) => {
    if (S.drawing) { S.later = data; return; } // the slice changes once the stroke is finished
    S.data = data;
    load();
    const gone = new Set(data.gone || []);
    const before = store.strokes.length;
    store.strokes = store.strokes.filter((s) => !gone.has(s.id));
    if (store.strokes.length !== before) persist();
    const layers = [[img, data.image, data.image_id, 'shownImage'], [tint, data.tint, data.tint_id, 'shownTint']];
    for (const [, src, id] of layers) if (src) remember(id, src);
    const want = layers.filter((w) => S[w[3]] !== w[2]);
    if (want.some((w) => !pics.has(w[2]))) {
      // a picture the server thought this page holds is gone (never so far): ask for it
      if (S.view) S.redraw();
      send(null);
      return;
    }
    if (!want.length) {
      show(data);
    } else {
      const srcs = want.map((w) => pics.get(w[2]));
      // the old pictures stay until the new ones are decoded: the canvas never blinks or moves
      Promise.all(srcs.map((src) => { const p = new Image(); p.src = src; return p.decode().then(() => true, () => false); }))
        .then((ok) => {
          if (S.data !== data && (S.data.image_id !== data.image_id || S.data.tint_id !== data.tint_id)) return; // newer pictures came
          if (!ok.every(Boolean)) { W.setTimeout(() => S.data === data && S.update(data), 500); return; } // again
          const swap = () => {
            want.forEach(([el, , id, slot], i) => { el.src = srcs[i]; S[slot] = id; });
            wrap.dataset.image = data.image_id + '|' + data.tint_id;
            show(S.data.image_id === data.image_id && S.data.tint_id === data.tint_id ? S.data : data);
          };
          if (S.drawing) S.swap = swap; else swap(); // not under a stroke being drawn
        });
      if (S.view) S.redraw();
    }
    if (S.dirty) send(null);
  };
  return S;
}
