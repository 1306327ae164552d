"""The dashboard (tunebench.dashboard): its JSON API on real experiment folders, the incremental
reading of event logs, the refusal of paths outside its roots; and (slow) its pages in a real
headless Chromium against a live tuner."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("plotly")
from conftest import QUADRATIC, write_script  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from tunebench import load_experiment  # noqa: E402
from tunebench.cli import main  # noqa: E402
from tunebench.dashboard import LiveExperiment, create_app  # noqa: E402
from tunebench.events import dumps_line  # noqa: E402
from tunebench.store import EVENTS_FILE  # noqa: E402


def _run(args: list[str]) -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(args) == 0


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a multi-objective experiment (zdt1) and a small grid (branin, RS and ASHA, 2 seeds)."""
    base = tmp_path_factory.mktemp("dash")
    _run(["run", "--benchmark", "zdt1", "--method", "RS", "--metric", "f1", "f2", "--max-trials", "20",
          "--experiment-dir", str(base / "zdt1"), "--no-progress"])
    _run(["experiment", "--benchmark", "branin", "--method", "RS", "ASHA", "--num-seeds", "2", "--max-trials", "15",
          "--experiment-tag", "demo", "--results-root", str(base / "results"), "--no-progress", "--parallel", "1"])
    return base


@pytest.fixture(scope="module")
def client(root: Path) -> Iterator[TestClient]:
    with TestClient(create_app([root])) as c:
        yield c


GRID_IDS = [f"0/results/demo/branin/{m}/{s}" for m in ("ASHA", "RS") for s in (0, 1)]


def test_the_overview_lists_every_experiment_and_grid_with_what_show_says(client: TestClient, root: Path):
    data = client.get("/api/experiments").json()
    rows = {row["id"]: row for row in data["experiments"]}
    assert sorted(rows) == sorted(["0/zdt1", *GRID_IDS])
    assert data["grids"] == [{"id": "0/results/demo", "tag": "demo", "n_experiments": 4}]
    for exp_id, row in rows.items():
        exp = load_experiment(root / exp_id.split("/", 1)[1])
        summary = exp.summary()
        assert row["status"]["state"] == "finished" and row["status"]["holder"] is None
        assert row["status"]["reason"] == summary["end_reason"]
        assert row["method"] == summary["method"] and row["n_trials"] == summary["n_trials"]
        assert sum(row["trials"].values()) == row["n_trials"]
        assert row["trials"].get("completed", 0) == summary["n_completed"]
        assert row["best"] == summary["best_metric"] and row["best_trial_id"] == summary["best_trial_id"]
        assert row["benchmark"] == exp_id.split("/")[-3] if exp_id in GRID_IDS else row["benchmark"] == "zdt1"
        assert row["offset"] == (exp.path / EVENTS_FILE).stat().st_size
        assert row["last_activity"] == pytest.approx((exp.path / EVENTS_FILE).stat().st_mtime)
    assert rows["0/zdt1"]["metrics"] == ["f1", "f2"] and rows["0/zdt1"]["simulated"] is True


def test_one_experiment_has_its_trial_table_curves_and_pareto_front(client: TestClient, root: Path):
    d = client.get("/api/experiments/0/zdt1").json()
    exp = load_experiment(root / "zdt1")
    assert d["trial_table"] == json.loads(json.dumps(exp.trial_table()))
    front = exp.front_summary()
    assert d["pareto_front"] == json.loads(json.dumps(front["pareto_front"])) and len(d["pareto_front"]) >= 1
    assert d["hypervolume"] == pytest.approx(front["hypervolume"])
    # one learning-curve point per decided result, each trial with its status
    assert sum(len(c["value"]) for c in d["curves"]) == exp.state.n_results
    statuses = {row["trial_id"]: row["status"] for row in d["trial_table"]}
    assert {c["trial_id"]: c["status"] for c in d["curves"]} == statuses
    assert all(len(c["time"]) == len(c["resource"]) == len(c["value"]) for c in d["curves"])
    # the best so far only improves (f1 is minimized) and ends at the best value of any result
    best = d["best_so_far"]["value"]
    assert best == sorted(best, reverse=True) and best[-1] == exp.best()[2]
    # a single-objective experiment has no front
    single = client.get(f"/api/experiments/{GRID_IDS[0]}").json()
    assert "pareto_front" not in single and single["resource_attr"] == "epoch"
    for page in ("/", "/experiments/0/zdt1", "/grids/0/results/demo"):
        r = client.get(page)
        assert r.status_code == 200 and "/static/dashboard.js" in r.text and "/static/plotly.min.js" in r.text


def test_plotly_is_served_from_its_python_package(client: TestClient):
    import plotly

    r = client.get("/static/plotly.min.js")
    shipped = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    assert r.status_code == 200 and r.content == shipped.read_bytes()
    assert client.get("/static/dashboard.js").status_code == 200
    assert client.get("/static/nope.js").status_code == 404


def test_the_grid_page_has_the_comparison_figure_and_the_report_tables(client: TestClient, root: Path):
    g = client.get("/api/grids/0/results/demo").json()
    assert g["error"] is None and g["experiments"] == sorted(GRID_IDS) and g["figures"] == ["branin.png"]
    png = client.get("/api/grid-figure/branin.png", params={"grid": "0/results/demo"})
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<table>" in g["report_html"] and "ASHA" in g["report_html"] and "RS" in g["report_html"]
    # drawn again only when a log grew
    assert client.get("/api/grids/0/results/demo").json()["signature"] == g["signature"]
    with open(root / "results/demo/branin/RS/1" / EVENTS_FILE, "ab") as f:
        f.write(b"\n")  # a blank line: skipped by every reader
    again = client.get("/api/grids/0/results/demo").json()
    assert again["signature"] != g["signature"] and again["figures"] == ["branin.png"]
    assert client.get("/api/grid-figure/branin.png", params={"grid": "0/results/nope"}).status_code == 404
    assert client.get("/api/grid-figure/..%2Fx.png", params={"grid": "0/results/demo"}).status_code == 404


def test_paths_outside_the_roots_are_refused(root: Path, tmp_path: Path):
    outside = tmp_path / "outside"
    shutil.copytree(root / "zdt1", outside)
    inside = tmp_path / "root"
    inside.mkdir()
    shutil.copytree(root / "zdt1", inside / "mine")
    (inside / "link").symlink_to(outside)  # a symbolic link out of the root
    (inside / "plain").mkdir()
    with TestClient(create_app([inside])) as c:
        assert [e["id"] for e in c.get("/api/experiments").json()["experiments"]] == ["0/mine"]
        assert c.get("/api/experiments/0/mine").status_code == 200
        for url in ("/api/experiments/0/link", "/experiments/0/link", "/api/experiments/0/%2e%2e/outside",
                    "/api/experiments/0//etc", "/api/grids/0/%2e%2e"):
            assert c.get(url).status_code == 403, url
        for url in ("/api/experiments/0/plain", "/api/experiments/1/mine", "/api/experiments/x/mine",
                    "/api/grids/0/mine", "/experiments/0/nope"):
            assert c.get(url).status_code == 404, url
        for method in ("post", "put", "delete"):
            assert getattr(c, method)("/api/experiments/0/mine").status_code == 405


def test_a_log_is_read_incrementally_by_offset(root: Path, tmp_path: Path):
    path = tmp_path / "exp"
    shutil.copytree(root / "zdt1", path)
    log = path / EVENTS_FILE
    live = LiveExperiment(path)
    n = live.refresh()
    size = log.stat().st_size
    assert n == load_experiment(path).state.n_events and live.offset == size
    n_trials, n_results = len(live.state.trials), live.state.n_results
    assert live.refresh() == 0 and live.offset == size
    # blank out the bytes already read (same size, same file): a reader that went back would lose every trial
    with open(log, "r+b") as f:
        f.write(b" " * (size - 1))
    tid, t = live.state.next_trial_id, live.state.time + 1.0
    start = dumps_line({"event": "trial_start", "trial_id": tid, "config": {"x1": 0.5, "epochs": 27}, "time": t,
                        "seq": 10_000})
    result = dumps_line({"event": "result", "trial_id": tid, "result": {"f1": 0.25, "f2": 3.0, "epoch": 1},
                         "decision": "CONTINUE", "time": t, "seq": 10_001})
    with open(log, "ab") as f:
        f.write(start + result[:10])  # the second line torn: not read yet
    assert live.refresh() == 1 and live.offset == size + len(start)
    assert len(live.state.trials) == n_trials + 1 and live.state.trials[tid].status.value == "running"
    with open(log, "ab") as f:
        f.write(result[10:])
    assert live.refresh() == 1 and live.offset == size + len(start) + len(result)
    assert live.state.n_results == n_results + 1 and live.state.trials[tid].last_result == {
        "f1": 0.25, "f2": 3.0, "epoch": 1}
    with TestClient(create_app([path])) as c:  # the API's rows follow the same rule
        row = {r["trial_id"]: r for r in c.get("/api/experiments/0").json()["trial_table"]}[tid]
        assert row["status"] == "running" and row["last"] == 0.25 and row["resource_reached"] == 1
    # a log replaced by a new one (another inode) is read from its start
    log.unlink()
    log.write_bytes(start)
    assert live.refresh() == 1 and live.offset == len(start) and list(live.state.trials) == [tid]


def test_the_status_says_running_with_the_holder_finished_failed_or_interrupted(root: Path, tmp_path: Path):
    from tunebench.lock import FolderLock
    from tunebench.store import TUNER_LOCK_FILE

    path = tmp_path / "exp"
    shutil.copytree(root / "zdt1", path)
    log = path / EVENTS_FILE
    lines = log.read_bytes().splitlines(keepends=True)
    end = json.loads(lines[-1])
    assert end["event"] == "experiment_end"

    def status() -> dict:
        with TestClient(create_app([path])) as c:  # a new server: the log read from its start
            return c.get("/api/experiments").json()["experiments"][0]["status"]

    assert status() == {"state": "finished", "holder": None, "holder_text": None, "reason": end["reason"]}
    lock = FolderLock(path / TUNER_LOCK_FILE)
    assert lock.acquire() is None
    try:
        running = status()
        assert running["state"] == "running" and running["holder"]["pid"] == os.getpid()
        assert f"pid {os.getpid()}" in running["holder_text"]
    finally:
        lock.release()
    log.write_bytes(b"".join(lines[:-1]))  # killed: no end
    assert status()["state"] == "interrupted"
    for reason, state in (("error: RuntimeError: boom", "failed"), ("interrupted", "interrupted")):
        log.write_bytes(b"".join(lines[:-1]) + dumps_line({**end, "reason": reason}))
        assert status() == {"state": state, "holder": None, "holder_text": None, "reason": reason}


def test_the_command_refuses_a_missing_folder_in_one_line(tmp_path: Path, capsys):
    assert main(["dashboard", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tunebench: error: ") and "is not a folder" in err[0]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["dashboard", str(tmp_path), "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"cannot listen on 127.0.0.1:{port}" in err[0] and "--port" in err[0]


# -- in a real browser (slow) ---------------------------------------------------------------------


def _chromium() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _server(roots: list[Path]) -> Iterator[str]:
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(roots), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the dashboard server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join()


@contextlib.contextmanager
def _browser() -> Iterator[object]:
    found = _chromium()
    if found is None:
        pytest.skip("Chromium and chromedriver are absent (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = found[0]
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=found[1]), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(predicate, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _errors(driver) -> list[dict]:
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


@pytest.mark.slow
def test_the_pages_in_a_browser_follow_a_live_tuner(root: Path, tmp_path: Path):
    if _chromium() is None:
        pytest.skip("Chromium and chromedriver are absent (apt-get install chromium chromium-driver)")
    script = write_script(tmp_path, QUADRATIC)
    space = tmp_path / "space.json"
    space.write_text(json.dumps({"x": {"type": "uniform", "low": -1, "high": 1}, "sleep": 0.15, "epochs": 6}))
    exp = tmp_path / "runs" / "live"
    exp.parent.mkdir()
    shutil.copytree(root / "zdt1", tmp_path / "runs" / "zdt1")
    tuner = subprocess.Popen(
        [sys.executable, "-m", "tunebench", "run", "--script", str(script), "--config-space", str(space),
         "--metric", "loss", "--resource-attr", "epoch", "--method", "RS", "--n-workers", "2",
         "--max-trials", "200", "--experiment-dir", str(exp), "--no-progress"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        with _server([tmp_path / "runs"]) as url, _browser() as driver:
            _wait(lambda: (exp / EVENTS_FILE).exists(), "the tuner's log")
            driver.get(url + "/")
            rows = _wait(lambda: driver.find_elements("css selector", "#experiments tbody tr"), "the overview")
            _wait(lambda: "running" in driver.find_element("css selector", "#experiments").text, "a running row")
            text = driver.find_element("css selector", "#experiments").text
            assert len(rows) == 2 and "zdt1" in text and "finished" in text and f"pid {tuner.pid}" in text
            driver.get(url + "/experiments/0/live")
            n_rows = lambda: len(driver.find_elements("css selector", "#trials tbody tr"))  # noqa: E731
            first = _wait(n_rows, "the trial table")
            _wait(lambda: n_rows() > first, "the trial table to grow while the tuner runs")
            assert tuner.poll() is None, "the tuner ended before the table grew"
            assert driver.find_elements("css selector", "#best .main-svg")  # plotly drew the charts
            assert driver.find_elements("css selector", "#curves .main-svg")
            driver.get(url + "/experiments/0/zdt1")
            _wait(lambda: driver.find_elements("css selector", "#front .main-svg"), "the Pareto front")
            assert _errors(driver) == []
    finally:
        tuner.terminate()
        _, err = tuner.communicate(timeout=60)
    assert tuner.returncode in (0, -15, 130, 143), err.decode()


@pytest.mark.slow
def test_the_grid_page_in_a_browser_shows_its_figure_and_report(root: Path):
    if _chromium() is None:
        pytest.skip("Chromium and chromedriver are absent (apt-get install chromium chromium-driver)")
    with _server([root]) as url, _browser() as driver:
        driver.get(url + "/grids/0/results/demo")
        img = _wait(lambda: driver.find_elements("css selector", "#figures img"), "the grid's figure")[0]
        _wait(lambda: driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img),
              "the figure to load")
        assert driver.find_elements("css selector", "#report table")
        assert _errors(driver) == []
