"""Load: simulated browser users click through the dashboard while a training job (or a dataset
prediction) runs; how fast the pages render and how fast the background computation keeps going.

    python benchmarks/bench_load.py [--quick] [--users 1,4,8] [--seconds 40] [--kinds server,cli,predict]

For each *kind* of background work and each CPU policy (``off``: ``SEGDASH_SHARE_CPU=0``, the old
behaviour; ``on``: the default of :func:`core.nn.device.share_cpu_for_background`), a fresh
``streamlit run app.py`` server is started on one temporary workspace holding the bundled sample,
and then, for each number of users N: the background work alone for ``--seconds`` (idle rate), then
N users clicking through the pages for ``--seconds`` (rate under load, page renders). Kinds:

- ``server``: a training job started in the server process as the Train page starts it
  (``registry().start(TrainingJob(...))``); steps/s from the job's snapshot, sampled every 0.5 s;
- ``cli``: ``python -m core train`` on the same workspace; steps/s from its progress lines;
- ``predict``: dataset predictions started in the server process as the Predictions page starts
  them (``prediction_jobs(ws, dataset, start=PredictionJob(...))``), one after the other; slices/s.

Before the arms, the same N users browse with nothing in the background (``none``). The arms
alternate (off, on, then on, off in the next round) so a busy neighbour slows both alike.

A *user* is its own process with its own headless Debian chromium (a fresh session): it opens the
app (``first_load_s``) and then clicks the sidebar links Home, Data, Label, Augment, Train,
Predictions, Export in a loop (each user starts at another page), pausing ``--think`` seconds
between clicks. A *render* is the time from the click to the page settled: its title is the page's
``h1`` and Streamlit's running indicator has been absent for 0.5 s (the time counts up to the start
of that quiet half second), at most 60 s (then counted as a timeout).

The browsers: in real use they run on the users' machines, here on the same cores. Each user
process and its chromium run at nice 19 (``--browser-nice``), so they take only CPU that nothing
else here wants, and the cores they keep busy on average are reported (``browsers_cores``) beside
the server's and the CLI job's (``ours_cores``) and everyone else's (``others_cores``: other
tenants of the machine, from /proc/stat).
Render times include the browser's own work at that lowest priority: an upper bound.

First, with no server, the default recipe's training step runs alone on a background thread in
a child process per policy (``off``, ``passive``: passive waiting at normal priority, ``on``, and
``1 thread``), alternating, with the CPU seconds it costs a step: spinning shows as CPU burnt
without progress, which stays visible however busy the machine is (``--steps-only``: just this).

The server is started through this file (``--serve``): a sampler thread in the server's process
records the job's progress and the process's RSS, then ``streamlit run`` goes on as usual.
Internal modes: ``--serve WORKSPACE CONTROL_DIR PORT``, ``--user URL OUT SECONDS OFFSET THINK``,
``--steps SECONDS``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from _common import ROOT, report

PAGES = ["Home", "Data", "Label", "Augment", "Train", "Predictions", "Export"]
H1 = {"Home": "SegDash"}  # a page's h1, where it is not the page's name
SLUG = {"Home": ""}  # a page's path, where it is not its name in lower case
RENDER_TIMEOUT_S = 60.0
POLICIES = {  # name: environment of the server (and the CLI job)
    "off": {"SEGDASH_SHARE_CPU": "0"},  # as before: all cores, normal priority, OpenMP's default waiting
    "on": {},  # the default policy (core.nn.device.share_cpu_for_background)
    "passive": {"SEGDASH_NICE": "0"},  # the policy without the lower priority
}
DATASET = "isbi2012"


# -- inside the server process ----------------------------------------------------------------------
def serve(ws_root: str, ctrl: str, port: str) -> None:
    """The sampler thread, then ``streamlit run app.py`` in this process (as the CLI runs it)."""
    os.environ["SEGDASH_WORKSPACE"] = ws_root
    threading.Thread(target=_sampler, args=(Path(ws_root), Path(ctrl)), daemon=True).start()
    from streamlit.web import cli

    sys.argv = ["streamlit", "run", str(ROOT / "app.py"), "--server.port", port, "--server.address", "127.0.0.1"]
    sys.argv += ["--server.headless", "true", "--browser.gatherUsageStats", "false"]
    sys.exit(cli.main())


def _status(key: str) -> float:
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def _sampler(ws_root: Path, ctrl: Path) -> None:
    """Every 0.5 s: commands from ``ctrl/cmd-*.json`` (train, predict, stop), then one line of
    ``ctrl/samples.jsonl``: time, RSS, peak RSS, work done (training steps or predicted slices)."""
    seen: set[str] = set()
    state = {"train": None, "predict": None, "pred_done": 0, "pred_k": 0, "ckpt": None}
    out = open(ctrl / "samples.jsonl", "a", buffering=1)
    while True:
        for cmd in sorted(ctrl.glob("cmd-*.json")):
            if cmd.name not in seen:
                seen.add(cmd.name)
                _command(json.loads(cmd.read_text()), ws_root, state)
        done = None
        if state["train"] is not None:
            s = state["train"].snapshot()
            done = (s.epoch - s.start_epoch) * s.steps_per_epoch + s.step
        if state["ckpt"] is not None:
            done = _predict_more(ws_root, state)
        row = {"t": time.time(), "rss_mb": _status("VmRSS"), "hwm_mb": _status("VmHWM"), "done": done}
        row["omp_wait_policy"] = os.environ.get("OMP_WAIT_POLICY")
        out.write(json.dumps(row) + "\n")
        time.sleep(0.5)


def _command(cmd: dict, ws_root: Path, state: dict) -> None:
    from dataclasses import replace

    from core.store.workspace import Workspace

    ws = Workspace(ws_root)
    if cmd["do"] == "train":
        from core.train.config import default_config
        from core.train.process import start_training

        cfg = replace(default_config(ws.dataset(DATASET).n_classes), epochs=10_000)
        state["train"] = start_training(ws, DATASET, cfg)  # as the Train page starts it
    elif cmd["do"] == "predict":
        state["ckpt"] = cmd["checkpoint"]
    elif cmd["do"] == "stop":
        if state["train"] is not None:
            state["train"].stop()
            state["train"].join(60)
            state["train"] = None
        state["ckpt"] = None
        if state["predict"] is not None:
            state["predict"].cancel()
            state["predict"].join(60)
            state["predict"] = None


def _predict_more(ws_root: Path, state: dict) -> int:
    """Slices predicted so far; starts the next prediction of the dataset when one has finished."""
    from core.predict.config import PredictConfig
    from core.predict.dataset import PredictionJob, prediction_jobs
    from core.store.workspace import Workspace

    job = state["predict"]
    if job is not None and not job.is_active():
        state["pred_done"] += job.snapshot().done
        job = state["predict"] = None
    if job is None:
        ws = Workspace(ws_root)
        state["pred_k"] += 1
        new = PredictionJob(ws, DATASET, state["ckpt"], PredictConfig(), run_id=f"bench-{state['pred_k']}")
        job = state["predict"] = prediction_jobs(ws, DATASET, start=new)
    return state["pred_done"] + job.snapshot().done


# -- one simulated user -------------------------------------------------------------------------------
def user(url: str, out: str, seconds: float, offset: int, think: float) -> None:
    from playwright.sync_api import sync_playwright

    from tests.e2e.browser import launch

    rec: dict = {"renders": [], "errors": []}
    with sync_playwright() as p:
        browser = launch(p)
        _nice_autogroups(os.nice(0))
        page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        page.set_default_timeout(RENDER_TIMEOUT_S * 1000)
        t0 = time.time()
        try:
            page.goto(url)
        except Exception as exc:  # noqa: BLE001 - playwright's TimeoutError: the page may still come
            rec["errors"].append(f"first load: {type(exc).__name__}")
        rec["first_load_s"] = _settled(page, "Home", t0)
        rec["t_ready"] = time.time()
        end = rec["t_ready"] + seconds
        order = PAGES[offset % len(PAGES) :] + PAGES[: offset % len(PAGES)]
        while time.time() < end:
            for title in order[1:] + order[:1]:
                if time.time() >= end:
                    break
                try:
                    link = page.locator(
                        f"a[data-testid='stSidebarNavLink'][href='{url}/{SLUG.get(title, title.lower())}']"
                    )
                    t_click = time.time()
                    link.click()
                    rec["renders"].append([title, _settled(page, title, t_click), t_click])
                except Exception as exc:  # noqa: BLE001 - recorded, the user goes on
                    rec["errors"].append(f"{title}: {type(exc).__name__}: {str(exc)[:200]}")
                time.sleep(think)
        rec["t_end"] = time.time()
        browser.close()
    Path(out).write_text(json.dumps(rec))


_PAGE_STATE = """() => [(document.querySelector('h1')?.innerText ?? '').trim(),
    document.querySelector("[data-testid='stStatusWidget']") !== null]"""


def _settled(page, title: str, t0: float) -> float:
    """Seconds from ``t0`` until the page shows ``title`` as its h1 and no running indicator for 0.5
    s (counted to the start of that quiet time); :data:`RENDER_TIMEOUT_S` when it never does."""
    want = H1.get(title, title)
    quiet_since = None
    while time.time() - t0 < RENDER_TIMEOUT_S:
        h1, running = page.evaluate(_PAGE_STATE)
        now = time.time()
        if h1 == want and not running:
            quiet_since = quiet_since or now
            if now - quiet_since >= 0.5:
                return quiet_since - t0
        else:
            quiet_since = None
        time.sleep(0.1)
    return RENDER_TIMEOUT_S


# -- training steps alone on a background thread, per policy (contention-robust: CPU per step) -------
STEP_ARMS = {  # name: environment of the child that trains
    "off": {"SEGDASH_SHARE_CPU": "0"},
    "passive": {"SEGDASH_NICE": "0", "OMP_WAIT_POLICY": "PASSIVE"},
    "on": {"OMP_WAIT_POLICY": "PASSIVE"},
    "1 thread": {"SEGDASH_SHARE_CPU": "0", "SEGDASH_THREADS": "1"},
}


def steps_child(seconds: float) -> None:
    """The default recipe's training step on random 4 x 256 x 256 patches, on a background thread set
    up as the training worker sets it up; prints steps/s and CPU seconds per step as JSON."""
    import torch

    from core.nn.device import amp_dtype_for, select_device, share_cpu_for_background, sharing_cpu
    from core.train.config import default_config
    from core.train.loop import autocast, build_training

    out: dict = {}

    def work() -> None:
        if sharing_cpu():
            out["share"] = share_cpu_for_background()
        cfg, dev = default_config(2), select_device("cpu")
        amp = amp_dtype_for(dev, True)
        st = build_training(cfg, dev, amp)
        x = torch.randn(4, 1, 256, 256).contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, 2, (4, 256, 256))

        def step() -> None:
            with autocast(dev, amp):
                loss = st.loss_fn(st.model(x), y)
            st.optimizer.zero_grad()
            loss.backward()
            st.optimizer.step()

        step(), step()
        c0, t0, n = time.process_time(), time.time(), 0
        while time.time() - t0 < seconds:
            step()
            n += 1
        out.update(steps_per_s=n / (time.time() - t0), cpu_s_per_step=(time.process_time() - c0) / n)
        out["threads"] = torch.get_num_threads()

    t = threading.Thread(target=work)
    t.start()
    t.join()
    print(json.dumps(out))


def bench_steps(rounds: int, seconds: float) -> list[dict]:
    """Each arm of :data:`STEP_ARMS` in its own process, alternating, ``rounds`` times; medians."""
    runs: dict[str, list[dict]] = {arm: [] for arm in STEP_ARMS}
    for r in range(rounds):
        for arm in list(STEP_ARMS) if r % 2 == 0 else list(STEP_ARMS)[::-1]:
            env = {k: v for k, v in os.environ.items() if not k.startswith(("SEGDASH_", "OMP_WAIT"))}
            env.update(PYTHONPATH=str(ROOT), **STEP_ARMS[arm])
            load = os.getloadavg()[0]
            res = subprocess.run(
                [sys.executable, __file__, "--steps", str(seconds)],
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            runs[arm].append({**json.loads(res.stdout.strip().splitlines()[-1]), "load_avg": load})
    return [
        {
            "arm": arm,
            "steps_per_s": statistics.median(x["steps_per_s"] for x in xs),
            "cpu_s_per_step": statistics.median(x["cpu_s_per_step"] for x in xs),
            "threads": xs[0]["threads"],
            "load_avg": round(statistics.median(x["load_avg"] for x in xs), 1),
            "per_round_steps_per_s": [round(x["steps_per_s"], 3) for x in xs],
        }
        for arm, xs in runs.items()
    ]


# -- the benchmark ------------------------------------------------------------------------------------
def _cpu_ticks(pids: set[int]) -> float:
    """CPU seconds (user + system) of ``pids`` and all their descendants, alive now."""
    total = 0
    for pid in {p for procs in _tree(pids).values() for p in procs}:
        try:
            f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(f[11]) + int(f[12])
    return total / os.sysconf("SC_CLK_TCK")


def _tree(pids: set[int]) -> dict[int, list[int]]:
    """``pids`` and all their descendants alive now, each with its parent chain's root in ``pids``."""
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(d))
    out: dict[int, list[int]] = {}
    for root in pids:
        todo, seen = [root], []
        while todo:
            pid = todo.pop()
            if pid not in seen:
                seen.append(pid)
                todo += children.get(pid, [])
        out[root] = seen
    return out


def _sched(pids: set[int]) -> dict[str, dict[int, tuple[float, float, int, int]]]:
    """Per thread of ``pids`` (``"server"``) and of their descendants (``"worker"``: the training or
    prediction worker process): seconds on a CPU, seconds runnable but waiting for one (the
    kernel's schedstat), voluntary and involuntary context switches."""
    out: dict[str, dict[int, tuple[float, float, int, int]]] = {"server": {}, "worker": {}}
    for root, procs in _tree(pids).items():
        for pid in procs:
            group = out["server" if pid == root else "worker"]
            try:
                tids = os.listdir(f"/proc/{pid}/task")
            except OSError:
                continue
            for tid in tids:
                try:
                    run, wait, _ = open(f"/proc/{pid}/task/{tid}/schedstat").read().split()
                    status = open(f"/proc/{pid}/task/{tid}/status").read()
                except (OSError, ValueError):
                    continue
                ctx = dict(re.findall(r"^(\w+_ctxt_switches):\s+(\d+)", status, re.M))
                group[int(tid)] = (
                    int(run) / 1e9,
                    int(wait) / 1e9,
                    int(ctx.get("voluntary_ctxt_switches", 0)),
                    int(ctx.get("nonvoluntary_ctxt_switches", 0)),
                )
    return out


def _sched_window(before: dict, after: dict, seconds: float) -> dict:
    """What the threads did between two :func:`_sched` snapshots, as shares of the window: for the
    server and the worker, cores running and cores runnable-but-waiting; for the worker's 2 busiest
    threads (its compute threads), each one's share running, waiting for a CPU, and asleep (blocked:
    on a lock, a barrier, I/O), with their switches per second."""
    res: dict = {}
    for group in ("server", "worker"):
        rows = []
        for tid, (run, wait, vcs, ivcs) in after[group].items():
            r0, w0, v0, i0 = before[group].get(tid, (0.0, 0.0, 0, 0))
            rows.append((run - r0, wait - w0, vcs - v0, ivcs - i0))
        res[f"{group}_run_cores"] = round(sum(r[0] for r in rows) / seconds, 3)
        res[f"{group}_wait_cores"] = round(sum(r[1] for r in rows) / seconds, 3)
        if group == "worker":
            busiest = sorted(rows, key=lambda r: -r[0])[:2]
            res["worker_threads"] = [
                {
                    "run": round(r / seconds, 3),
                    "wait": round(w / seconds, 3),
                    "asleep": round(max(0.0, 1 - (r + w) / seconds), 3),
                    "voluntary_per_s": round(v / seconds, 1),
                    "preempted_per_s": round(i / seconds, 1),
                }
                for r, w, v, i in busiest
            ]
    return res


def _machine_busy_s() -> float:
    f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return (sum(f[:8]) - f[3] - f[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait


def _stop(proc: subprocess.Popen, sig: int, wait_s: float) -> None:
    """Ask a child to end with ``sig``; kill it when it has not within ``wait_s`` seconds."""
    proc.send_signal(sig)
    try:
        proc.wait(wait_s)
    except subprocess.TimeoutExpired:
        proc.kill()


class Server:
    """``bench_load.py --serve`` as a subprocess on a free port, with a given environment."""

    def __init__(self, ws: Path, tmp: Path, env: dict[str, str]):
        from tests.e2e.browser import free_port

        self.ctrl = Path(tempfile.mkdtemp(dir=tmp, prefix="ctrl-"))
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log = open(self.ctrl / "server.log", "w")
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(ws), str(self.ctrl), str(port)],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own autogroup, at nice 0 as a server started from a shell
        )
        self.n_cmd = 0
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2).status == 200:
                    return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"streamlit did not start: {(self.ctrl / 'server.log').read_text()[-2000:]}")

    def command(self, **cmd) -> None:
        self.n_cmd += 1
        (self.ctrl / f"cmd-{self.n_cmd:03d}.json").write_text(json.dumps(cmd))

    def samples(self) -> list[dict]:
        path = self.ctrl / "samples.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def close(self) -> str:
        _stop(self.proc, signal.SIGTERM, 20)
        return (self.ctrl / "server.log").read_text()


class CliJob:
    """``python -m core train`` on the workspace; its progress lines give (time, steps done)."""

    def __init__(self, ws: Path, env: dict[str, str]):
        self.points: list[tuple[float, int]] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "core", "train", "--workspace", str(ws), "--dataset", DATASET, "--epochs", "10000"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own autogroup, as a job started from a shell
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            m = re.search(r"\] (\d+)/\d+", line)
            if m:
                self.points.append((time.time(), int(m.group(1))))

    def close(self) -> None:
        _stop(self.proc, signal.SIGINT, 60)


def _rate(points: list[tuple[float, float]], t0: float, t1: float) -> float | None:
    """Work per second between the first point at or after ``t0`` and the last at or before ``t1``."""
    inside = [(t, d) for t, d in points if t0 <= t <= t1 and d is not None]
    if len(inside) < 2 or inside[-1][0] - inside[0][0] < 2:
        return None
    return (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q * (len(v) - 1))))]


def _lower_priority(nice: int) -> None:
    """In a user's process before it starts: ``nice``, kept by its browser. Chromium raises its own
    threads' priority where it may (seen as root: nice -8 for its browser process and compositor,
    0 for renderers, whatever nice it was started with), so the capability to do so (CAP_SYS_NICE)
    is dropped from the process's bounding set first: its programs then cannot lower their nice."""
    os.nice(nice)
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(24, 23, 0, 0, 0)  # PR_CAPBSET_DROP, CAP_SYS_NICE; fails harmlessly when not root


def _nice_autogroups(nice: int) -> None:
    """Give the scheduling autogroups of this process's descendants that run in sessions of their
    own (the browser's) the nice value ``nice``. Linux groups processes by session
    (``sched_autogroup_enabled``) and shares the CPU fairly between the groups, whatever the nice
    values inside them; the browser starts sessions of its own, so without this each browser would
    weigh as much as the whole server (and its training) together. Descendants in this process's
    own session (playwright's driver) are left alone: their autogroup is the benchmark's, and
    renicing it once reniced every process of the session, a server started without a session of
    its own included (seen: the server and its training at autogroup nice 19 during the users'
    windows, as low as the browsers)."""
    mine = os.getsid(0)
    for pid in _tree({os.getpid()})[os.getpid()][1:]:
        try:
            if os.getsid(pid) == mine:
                continue
            with open(f"/proc/{pid}/autogroup", "w") as f:
                f.write(str(nice))
        except OSError:
            pass


def _autogroup_nice(pid: int) -> int | None:
    """The nice value of ``pid``'s scheduling autogroup (``None`` where there is none)."""
    try:
        return int(open(f"/proc/{pid}/autogroup").read().split()[-1])
    except (OSError, ValueError, IndexError):
        return None


def run_users(url: str, n: int, seconds: float, think: float, browser_nice: int, tmp: Path, watch: set[int]) -> dict:
    """``n`` user processes at once; their renders, the window they clicked in and CPU seconds by group."""
    outs = [tmp / f"user-{time.time_ns()}-{i}.json" for i in range(n)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = []
    for i, out in enumerate(outs):
        cmd = [sys.executable, __file__, "--user", url, str(out), str(seconds), str(i * 3), str(think)]
        procs.append(
            subprocess.Popen(cmd, cwd=ROOT, env=env, preexec_fn=lambda: _lower_priority(browser_nice))  # noqa: PLW1509
        )
    users = {p.pid for p in procs}
    sched0 = _sched(watch)
    cpu0 = {"users": _cpu_ticks(users), "watch": _cpu_ticks(watch), "machine": _machine_busy_s(), "t": time.time()}
    cpu_users_last = cpu0["users"]
    deadline = time.time() + seconds + 240
    while any(p.poll() is None for p in procs) and time.time() < deadline:
        cpu_users_last = max(cpu_users_last, _cpu_ticks(users))  # the tree is gone once a user exits
        time.sleep(1)
    for p in procs:
        if p.poll() is None:
            p.kill()
    elapsed = time.time() - cpu0["t"]
    sched = _sched_window(sched0, _sched(watch), elapsed) if watch else {}
    browsers, ours = cpu_users_last - cpu0["users"], _cpu_ticks(watch) - cpu0["watch"]
    cpu = {  # cores busy on average while the users ran (first loads included)
        "browsers_cores": browsers / elapsed,
        "ours_cores": ours / elapsed,
        "others_cores": (_machine_busy_s() - cpu0["machine"] - browsers - ours) / elapsed,
    }
    recs = [json.loads(o.read_text()) for o in outs if o.exists()]
    renders = [r for rec in recs for r in rec["renders"]]
    times = [r[1] for r in renders]
    window = (max((r["t_ready"] for r in recs), default=0), min((r["t_end"] for r in recs), default=0))
    if window[1] - window[0] < seconds / 2:  # a late first load: the time any user clicked
        window = (min((r["t_ready"] for r in recs), default=0), max((r["t_end"] for r in recs), default=0))
    return {
        "users": n,
        "users_finished": len(recs),
        "renders": len(times),
        "render_p50_s": _pct(times, 0.5),
        "render_p95_s": _pct(times, 0.95),
        "render_max_s": max(times) if times else None,
        "timeouts": sum(t >= RENDER_TIMEOUT_S for t in times),
        "first_load_max_s": max((r["first_load_s"] for r in recs), default=None),
        "errors": [e for rec in recs for e in rec["errors"]][:5],
        "window": window,
        "per_page_p95_s": {p: _pct([r[1] for r in renders if r[0] == p], 0.95) for p in PAGES},
        "sched_load": sched,
        **cpu,
    }


def prepare_workspace(tmp: Path) -> tuple[Path, str]:
    """The sample in a new workspace, and a checkpoint of a one-epoch run for the predictions."""
    from dataclasses import replace

    from core.store.workspace import Workspace
    from core.train.config import default_config
    from core.train.headless import train_headless
    from core.workflow.sample import ensure_sample

    ws = Workspace(tmp / "ws")
    ensure_sample(ws)
    cfg = replace(default_config(2), epochs=1, steps_per_epoch=5)
    summary = train_headless(ws, DATASET, config=cfg)
    return ws.root, summary["last_checkpoint"]


def wait_quiet(limit: float | None, most_s: float) -> float:
    """Wait (at most ``most_s``) until the 1-minute load average is at most ``limit``; the seconds waited."""
    t0 = time.time()
    while limit is not None and os.getloadavg()[0] > limit and time.time() - t0 < most_s:
        time.sleep(5)
    return time.time() - t0


def bench_arm(kind: str, policy: str, args, ws: Path, ckpt: str, tmp: Path, users: list[int]) -> list[dict]:
    waited = wait_quiet(args.wait_quiet, args.wait_most)
    env = {k: v for k, v in os.environ.items() if k not in ("SEGDASH_SHARE_CPU", "SEGDASH_NICE")}
    env.update(PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", SEGDASH_LOG_RUNS="1", **POLICIES[policy])
    server = Server(ws, tmp, env)
    rows: list[dict] = []
    cli = None
    try:
        run_users(server.url, 1, 5, args.think, args.browser_nice, tmp, set())  # warm-up: every page imported once
        if kind == "none":
            for n in users:
                rows.append(
                    {
                        "kind": kind,
                        "policy": policy,
                        **_row(
                            run_users(
                                server.url, n, args.seconds, args.think, args.browser_nice, tmp, {server.proc.pid}
                            ),
                            server,
                            None,
                            None,
                        ),
                    }
                )
            return rows
        if kind == "server":
            server.command(do="train")
        elif kind == "predict":
            server.command(do="predict", checkpoint=ckpt)
        else:
            cli = CliJob(ws, env)
        time.sleep(15)  # start-up: imports, model, first steps
        watch = {server.proc.pid} | ({cli.proc.pid} if cli else set())
        for n in users:
            t0, sched0 = time.time(), _sched(watch)
            time.sleep(args.seconds)
            sched_idle = _sched_window(sched0, _sched(watch), time.time() - t0)
            points = cli.points if cli else [(s["t"], s["done"]) for s in server.samples()]
            idle = _rate(points, t0, time.time())
            res = run_users(server.url, n, args.seconds, args.think, args.browser_nice, tmp, watch)
            points = cli.points if cli else [(s["t"], s["done"]) for s in server.samples()]
            busy = _rate(points, *res["window"])
            row = {"kind": kind, "policy": policy, **_row(res, server, idle, busy), "waited_s": round(waited)}
            row["server_autogroup_nice"] = _autogroup_nice(server.proc.pid)
            rows.append({**row, "sched_idle": sched_idle, "sched_load": res["sched_load"]})
    finally:
        if cli is not None:
            cli.close()
        server.command(do="stop")
        time.sleep(1)
        log = server.close()
        if "Traceback" in log:
            print(f"server log of {kind}/{policy} has a traceback:\n{log[-3000:]}", file=sys.stderr)
    return rows


def _server_runs(server: Server, t0: float, t1: float) -> list[float]:
    """Seconds the server took for each page run that ended between ``t0`` and ``t1`` (app.py's
    ``segdash-run`` lines): the part of a render the server is responsible for."""
    out = []
    for line in (server.ctrl / "server.log").read_text(errors="replace").splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[0] == "segdash-run" and t0 <= float(parts[1]) <= t1:
            out.append(float(parts[-1]))
    return out


def _row(res: dict, server: Server, idle: float | None, busy: float | None) -> dict:
    samples = server.samples()
    t0, t1 = res["window"]
    runs = _server_runs(server, t0, t1)
    row = {
        "users": res["users"],
        "work_idle_per_s": idle,
        "work_load_per_s": busy,
        "kept": (busy / idle) if idle and busy is not None else None,
        "render_p50_s": res["render_p50_s"],
        "render_p95_s": res["render_p95_s"],
        "render_max_s": res["render_max_s"],
        "server_run_p50_s": _pct(runs, 0.5),
        "server_run_p95_s": _pct(runs, 0.95),
        "renders": res["renders"],
        "timeouts": res["timeouts"],
        "first_load_max_s": res["first_load_max_s"],
        "server_peak_rss_mb": max((s["rss_mb"] for s in samples if t0 <= s["t"] <= t1), default=None),
        "browsers_cores": round(res["browsers_cores"], 2),
        "ours_cores": round(res["ours_cores"], 2),
        "others_cores": round(res["others_cores"], 2),
        "window_s": round(t1 - t0, 1),
        "load_avg": round(os.getloadavg()[0], 2),
    }
    if res["errors"] or res["users_finished"] < res["users"]:
        row["errors"] = res["errors"] or [f"{res['users'] - res['users_finished']} users did not finish"]
    row["per_page_p95_s"] = res["per_page_p95_s"]
    row["server_hwm_mb"] = samples[-1]["hwm_mb"] if samples else None
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="4 users, 25 s windows, training in the server only")
    ap.add_argument("--users", default="1,4,8", help="numbers of users (the server kind; others use 4)")
    ap.add_argument("--seconds", type=float, help="length of each idle and each load window (40; --quick 25)")
    ap.add_argument("--kinds", default="server,cli,predict", help="background work: server, cli, predict")
    ap.add_argument("--policies", default="off,on", help=f"CPU policies compared, of {', '.join(POLICIES)}")
    ap.add_argument("--rounds", type=int, default=1, help="rounds of the policies, in turn forwards and backwards")
    ap.add_argument("--think", type=float, default=1.0, help="seconds a user waits between clicks")
    ap.add_argument("--browser-nice", type=int, default=19, help="nice value of the users' browsers")
    ap.add_argument("--wait-quiet", type=float, help="before each arm, wait for a 1-min load average <= this")
    ap.add_argument("--wait-most", type=float, default=600, help="at most this many seconds per wait")
    ap.add_argument("--steps-only", action="store_true", help="only training steps alone, per policy (no server)")
    ap.add_argument("--no-baseline", action="store_true", help="skip the users-only rows (no background work)")
    ap.add_argument("--no-steps", action="store_true", help="skip the training steps alone per policy")
    ap.add_argument("--name", default="load", help="result file name (benchmarks/results/<name>.json)")
    args = ap.parse_args()
    users = [int(n) for n in args.users.split(",")]
    kinds = args.kinds.split(",")
    policies = args.policies.split(",")
    if args.quick:
        users, kinds = [4], ["server"]
    args.seconds = args.seconds or (25 if args.quick else 40)
    load_before = os.getloadavg()
    t_start = time.time()
    steps = [] if args.no_steps else bench_steps(2 if args.quick else 3, 10 if args.quick else 15)
    for row in steps:
        print(json.dumps(row), flush=True)
    if args.steps_only:
        report("load_steps", steps, {"load_avg_before": load_before, "load_avg_after": os.getloadavg()})
        return
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="segdash-load-") as tmp_name:
        tmp = Path(tmp_name)
        ws, ckpt = prepare_workspace(tmp)
        if not args.no_baseline and not args.quick:
            rows += bench_arm("none", "on", args, ws, ckpt, tmp, users)
        for r in range(args.rounds):
            for kind in kinds:
                for policy in policies if r % 2 == 0 else policies[::-1]:
                    rows += bench_arm(kind, policy, args, ws, ckpt, tmp, users if kind == "server" else [4])
                    print(json.dumps(rows[-1], default=str), flush=True)
    nested = ("per_page_p95_s", "errors", "sched_idle", "sched_load")
    table = [{k: v for k, v in row.items() if k not in nested} for row in rows]
    report(
        args.name,
        table,
        {
            "detail": rows,
            "settings": vars(args),
            "load_avg_before": load_before,
            "load_avg_after": os.getloadavg(),
            "minutes": round((time.time() - t_start) / 60, 1),
            "work_unit": {"server": "training steps", "cli": "training steps", "predict": "slices predicted"},
            "steps_alone": steps,
        },
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        sys.path.insert(0, str(ROOT))
        serve(*sys.argv[2:5])
    elif len(sys.argv) > 1 and sys.argv[1] == "--steps":
        sys.path.insert(0, str(ROOT))
        steps_child(float(sys.argv[2]))
    elif len(sys.argv) > 1 and sys.argv[1] == "--user":
        sys.path.insert(0, str(ROOT))
        a = sys.argv[2:7]
        user(a[0], a[1], float(a[2]), int(a[3]), float(a[4]))
    else:
        main()
