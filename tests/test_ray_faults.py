"""The Ray executor in broken surroundings, against real sockets and a real Ray cluster started here on
127.0.0.1: an address with nothing listening (or a socket that accepts and never answers) is a one-line error
within seconds, before anything is written; a live cluster's address passes the probe; the event queue actor
killed mid-study records the runs still pending as failed with the reason, no traceback, and a rerun completes
them from their checkpoints."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import assert_user_error, free_port, tiny_study, to_toml

# Ray on one machine: every node and the driver on the loopback address (as tests/test_ray.py does). Set before
# Ray is imported.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
import ray
from ray.cluster_utils import Cluster

from trainlab.api import run
from trainlab.cli import main
from trainlab.engine.events import EpochEnded, Event
from trainlab.engine.ray_executor import QUEUE_NAME, host_port, probe_address
from trainlab.store import Store

LOCAL = {"node_ip_address": "127.0.0.1", "include_dashboard": False}
FAST_S = 10.0  # a dead address must cost seconds (Ray's own retries ran for over 5 minutes)

STUDY_TOML = to_toml(tiny_study(study={"name": "ray_dead"}, train={"epochs": 1}, measure={"mfu": False}))


def test_addresses_that_are_probed_and_those_left_to_ray() -> None:
    assert host_port("10.0.0.5:6379") == ("10.0.0.5", 6379)
    assert host_port("ray://head:10001") == ("head", 10001)
    assert host_port("[::1]:6379") == ("::1", 6379)
    assert [host_port(a) for a in (None, "", "auto", "local", "10.0.0.5")] == [None] * 5


@pytest.mark.parametrize("kind", ["refused", "ray-client", "silent"])
def test_a_dead_address_is_an_error_within_seconds_before_anything_is_written(
    kind: str, silent_port: int, tmp_path: Path, capsys
) -> None:
    study = tmp_path / "study.toml"
    study.write_text(STUDY_TOML)
    out = tmp_path / "out"
    port = silent_port if kind == "silent" else free_port()
    address = f"ray://127.0.0.1:{port}" if kind == "ray-client" else f"127.0.0.1:{port}"
    start = time.perf_counter()
    code = main(["run", str(study), "--executor", "ray", "--address", address, "--out", str(out), "--quiet"])
    took = time.perf_counter() - start
    assert_user_error(code, capsys.readouterr().err, names=address)
    assert took < FAST_S, f"{took:.1f} s to give up on {address}"
    assert not out.exists()  # nothing written: the study folder is not even made
    assert not ray.is_initialized()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A one-node Ray cluster with one CPU: a study's second run waits for the first."""
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, **LOCAL})
    ray.init(address=c.address, include_dashboard=False, log_to_driver=False)
    yield c
    ray.shutdown()
    c.shutdown()


def test_a_live_clusters_address_passes_the_probe(cluster: Cluster) -> None:
    start = time.perf_counter()
    probe_address(cluster.address)  # Ray's GCS answers the probe's HTTP/2 preface at once
    assert time.perf_counter() - start < 1.0


class KillQueueAtFirstEpoch:
    """A sink that kills the study's event queue actor (with Ray's own ``ray.kill``) once the first epoch
    reached the driver: the queue dies mid-study, while one run trains and the other waits for a CPU."""

    def __init__(self) -> None:
        self.killed: list[str] = []

    def event(self, spec: object, event: Event) -> None:
        if isinstance(event, EpochEnded) and not self.killed:
            for actor in ray.util.list_named_actors(all_namespaces=True):
                if actor["name"].startswith(QUEUE_NAME):
                    ray.kill(ray.get_actor(actor["name"], namespace=actor["namespace"]), no_restart=True)
                    self.killed.append(actor["name"])


def test_the_queue_actor_killed_mid_study_fails_the_pending_runs_with_the_reason(cluster, tmp_path: Path) -> None:
    study = tiny_study(sweep={"train.lr": [0.05, 0.1]}, train={"epochs": 3}, measure={"mfu": False})
    out = tmp_path / "out"
    killer = KillQueueAtFirstEpoch()
    start = time.perf_counter()
    result = run(study, out=out, executor="ray", write_report=False, sinks=[killer])  # returns: no traceback
    took = time.perf_counter() - start
    assert killer.killed, "the queue actor was never found"
    assert [r.status for r in result.records] == ["failed", "failed"]
    for record in result.records:
        assert killer.killed[0] in record.error and "resume" in record.error, record.error
    assert took < 60, f"{took:.1f} s"
    again = run(study, out=out, executor="ray", write_report=False)  # a rerun: resumes, then completes
    assert [r.status for r in again.records] == ["done", "done"], [r.error for r in again.records]
    store = Store(out / "trainlab.db")
    assert all([e["epoch"] for e in store.epochs(r.run_id)] == [1, 2, 3] for r in again.records)
    assert again.records[0].results["resumed_from_epoch"] >= 1  # from the checkpoint the first try left
