"""Trackers in broken surroundings, with real services on 127.0.0.1 only: a real MLflow server (started here), a
real SQLite tracking store, and "dead" servers that are a port with nothing listening or a socket that accepts and
never answers. No tracker holds the driver up for more than seconds; a tracker disabled mid-study is not called
again at its end; ``trainlab export`` to a dead server is a one-line error; a bad URI scheme is named up front;
a ``'`` in the output path is quoted in MLflow's filter; exporting twice leaves every tracker as exporting once."""

from __future__ import annotations

import contextlib
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
from helpers import assert_user_error, free_port, tiny_study, to_toml
from mlflow.tracking import MlflowClient
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from trainlab.api import run
from trainlab.cli import main
from trainlab.engine.events import EpochEnded, Event
from trainlab.store import Store
from trainlab.study import load_study
from trainlab.track import Exported, export

# A dead server must cost seconds, where MLflow's own retries took 4 minutes per call.
FAST_S = 12.0
LR = [0.05, 1e12]  # the second run diverges in its first epoch: its train_loss is NaN (not logged)
QUICK = {"train": {"epochs": 2}, "measure": {"mfu": False, "profile": False}}
STUDY = tiny_study(sweep={"train.lr": LR}, **QUICK)
ONE_RUN = tiny_study(**QUICK)

STUDY_TOML = to_toml(tiny_study(train={"epochs": 1}, measure={"mfu": False}))


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A real MLflow tracking server on 127.0.0.1 (its own SQLite store); yields its port (~15 s to start)."""
    folder = tmp_path_factory.mktemp("mlflow_server")
    port = free_port()
    mlflow = Path(sys.executable).with_name("mlflow")
    cmd = [str(mlflow), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--backend-store-uri",
           f"sqlite:///{folder / 'server.db'}", "--default-artifact-root", str(folder / "art")]  # fmt: skip
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # no job-runner processes: faster start
    log = (folder / "server.log").open("w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            time.sleep(0.25)
    try:
        assert proc.poll() is None, (folder / "server.log").read_text()[-3000:]
        MlflowClient(f"http://127.0.0.1:{port}").search_experiments()  # answers the API, not just TCP
        yield port
    finally:
        os.killpg(proc.pid, 15)  # the server and its uvicorn worker: its own session, started here
        proc.wait(timeout=30)
        log.close()


class Relay:
    """A TCP relay on 127.0.0.1 to a real server: :meth:`close` leaves its port with nothing listening (the
    server dies, as far as its client can tell), including the connections already open."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client = self.listener.accept()[0]
            except OSError:  # closed
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:  # one side closed
            pass

    def close(self) -> None:
        self.listener.close()
        for conn in self.conns:
            with contextlib.suppress(OSError):  # already closed by the other side
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished two-run study (one done, one diverged) plus a third run planned and not started, no tracker.
    Tests export copies of it (each copy is another study folder: another parent run in MLflow)."""
    out = tmp_path_factory.mktemp("finished") / "study"
    result = run(STUDY, out=out, executor="inline", write_report=False)
    assert [r.status for r in result.records] == ["done", "diverged"]
    Store(out / "trainlab.db").set_plan(load_study(tiny_study(sweep={"train.lr": [*LR, 0.2]}, **QUICK)))
    return out


def _copy(finished: Path, tmp_path: Path, name: str = "study") -> Path:
    out = tmp_path / name
    shutil.copytree(finished, out)
    return out


def _mlflow_counts(client: MlflowClient, out: Path) -> dict[str, dict[str, int]]:
    """Per trainlab run id, the number of points of each metric in MLflow (the study in ``out`` only)."""
    exp = client.get_experiment_by_name("tiny")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.data.tags.get("trainlab.out") == str(out.resolve())]
    assert len(parents) == 1, [r.data.tags for r in runs]
    nested = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    return {
        r.data.tags["trainlab.run_id"]: {k: len(client.get_metric_history(r.info.run_id, k)) for k in r.data.metrics}
        for r in nested
    }


def _tensorboard_counts(out: Path) -> dict[str, dict[str, int]]:
    """Per run folder, the number of points of each scalar tag in its event files."""
    counts = {}
    for folder in sorted((out / "tensorboard").iterdir()):
        ea = EventAccumulator(str(folder))
        ea.Reload()
        counts[folder.name] = {tag: len(ea.Scalars(tag)) for tag in ea.Tags()["scalars"]}
    return counts


# ---- 3: a dead tracking server never stalls the driver ---------------------------------------------------------
@pytest.mark.parametrize("kind", ["refused", "silent"])
def test_a_dead_server_costs_a_live_study_seconds_and_one_warning(kind, silent_port, tmp_path: Path, capsys) -> None:
    port = free_port() if kind == "refused" else silent_port
    uri = f"http://127.0.0.1:{port}"
    start = time.perf_counter()
    result = run(ONE_RUN, out=tmp_path / "s", executor="inline", write_report=False, track=["mlflow"], tracking_uri=uri)
    took = time.perf_counter() - start
    assert [r.status for r in result.records] == ["done"]
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if "disabled" in line]
    assert len(warnings) == 1 and uri in warnings[0] and "Traceback" not in err, err
    assert took < FAST_S, f"the study took {took:.1f} s with a dead tracking server"


def test_a_server_dying_mid_study_is_not_called_again_at_its_end(mlflow_server, tmp_path: Path, capsys) -> None:
    relay = Relay(mlflow_server)

    class KillAtFirstEpoch:
        """A sink ahead of the tracker (user sinks come first): the server goes away after the first epoch."""

        def event(self, spec: object, event: Event) -> None:
            if isinstance(event, EpochEnded):
                relay.close()

    out = tmp_path / "dies"
    uri = f"http://127.0.0.1:{relay.port}"
    start = time.perf_counter()
    result = run(ONE_RUN, out=out, executor="inline", track=["mlflow"], tracking_uri=uri, sinks=[KillAtFirstEpoch()])
    took = time.perf_counter() - start
    assert [r.status for r in result.records] == ["done"]
    err = capsys.readouterr().err
    assert len([line for line in err.splitlines() if "disabled" in line]) == 1, err  # the study's end: no call
    assert took < FAST_S + 10, f"the study took {took:.1f} s"  # a whole (tiny) study with its report
    client = MlflowClient(f"http://127.0.0.1:{mlflow_server}")
    [parent] = client.search_runs(
        [client.get_experiment_by_name("tiny").experiment_id], filter_string=f"tags.`trainlab.out` = '{out.resolve()}'"
    )
    assert parent.info.status == "RUNNING"  # study_finished (artifacts, terminate) was never attempted
    assert client.list_artifacts(parent.info.run_id) == []


@pytest.mark.parametrize("kind", ["refused", "silent"])
def test_export_to_a_dead_server_is_an_error_within_seconds(kind, silent_port, finished, tmp_path, capsys) -> None:
    out = _copy(finished, tmp_path)
    port = free_port() if kind == "refused" else silent_port
    start = time.perf_counter()
    code = main(["export", str(out), "--to", "mlflow", "--tracking-uri", f"http://127.0.0.1:{port}"])
    took = time.perf_counter() - start
    assert_user_error(code, capsys.readouterr().err, names=f"http://127.0.0.1:{port}")
    assert took < FAST_S, f"export took {took:.1f} s"


def test_http_bounds_leave_a_users_own_setting_alone(monkeypatch, tmp_path: Path) -> None:
    from trainlab.track.mlflow_tracker import HTTP_BOUNDS, bounded_http

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "77")
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    with bounded_http():
        assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "77"
        assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == HTTP_BOUNDS["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ  # trainlab's calls only
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "77"


# ---- 4: a tracking URI MLflow cannot open is named before anything runs ----------------------------------------
def test_an_unknown_uri_scheme_is_named_up_front(finished, tmp_path: Path, monkeypatch, capsys) -> None:
    study = tmp_path / "study.toml"
    study.write_text(STUDY_TOML)
    out = tmp_path / "never"
    code = main(["run", str(study), "--track", "mlflow", "--tracking-uri", "notascheme://x", "--out", str(out), "-q"])
    err = capsys.readouterr().err
    assert_user_error(code, err, names="notascheme://x")
    assert "sqlite" in err and "http" in err  # says what is allowed
    assert not out.exists()  # before anything is written
    assert_user_error(main(["export", str(finished), "--to", "mlflow", "--tracking-uri", "notascheme://x"]),
                      capsys.readouterr().err, names="notascheme://x")  # fmt: skip
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "alsonot://y")
    assert_user_error(main(["export", str(finished), "--to", "mlflow"]), capsys.readouterr().err, names="alsonot://y")


# ---- 5: a quote in the output path ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["it's here", 'it\'s "both"'])
def test_a_quote_in_the_output_path(name: str, finished: Path, tmp_path: Path, capsys) -> None:
    out = _copy(finished, tmp_path, name)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert main(["export", str(out), "--to", "mlflow", "--tracking-uri", uri]) == 0
    once = _mlflow_counts(MlflowClient(uri), out)
    assert main(["export", str(out), "--to", "mlflow", "--tracking-uri", uri]) == 0  # finds its parent run again
    assert "Traceback" not in capsys.readouterr().err
    assert _mlflow_counts(MlflowClient(uri), out) == once and len(once) == 2


# ---- 6: exporting twice leaves the trackers as exporting once ---------------------------------------------------
def test_exporting_twice_is_idempotent_and_the_count_true(finished: Path, tmp_path: Path, capsys) -> None:
    out = _copy(finished, tmp_path)
    assert main(["export", str(out), "--to", "mlflow", "--to", "tensorboard"]) == 0
    printed = capsys.readouterr().out
    assert "mlflow: 2 runs exported" in printed and "tensorboard: 2 runs exported" in printed  # 3rd: not started
    client = MlflowClient(f"sqlite:///{out.resolve() / 'mlflow.db'}")
    mlflow_once, tb_once = _mlflow_counts(client, out), _tensorboard_counts(out)
    records = {r.run_id: r for r in Store(out / "trainlab.db").runs()}
    diverged = next(rid for rid, r in records.items() if r.status == "diverged")
    assert mlflow_once[diverged]["train/lr"] == 1 and "train/loss" not in mlflow_once[diverged]  # NaN: not logged
    done = next(rid for rid, r in records.items() if r.status == "done")
    assert mlflow_once[done]["train/loss"] == 2 and mlflow_once[done]["time/train_time_s"] == 1
    tb_done = tb_once[next(f for f in tb_once if f.endswith(done))]
    assert len(tb_once) == 2 and tb_done["train/loss"] == 2 and tb_done["hparams/time/train_time_s"] == 1, tb_once
    export(out, ["mlflow", "tensorboard"])
    assert _mlflow_counts(client, out) == mlflow_once
    assert _tensorboard_counts(out) == tb_once


def test_export_to_a_real_server_twice_adds_nothing(mlflow_server, finished, tmp_path) -> None:
    out = _copy(finished, tmp_path)
    uri = f"http://127.0.0.1:{mlflow_server}"
    client = MlflowClient(uri)
    export(out, ["mlflow"], uri)
    once = _mlflow_counts(client, out)
    assert len(once) == 2 and all(once.values())
    assert export(out, ["mlflow"], uri) == {"mlflow": Exported(sent=2, updated=0)}  # sent again, nothing new
    assert _mlflow_counts(client, out) == once
