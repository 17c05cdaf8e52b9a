"""The results store: one SQLite file per study output folder (``<out>/trainlab.db``).

Tables:
- ``meta``: key/value (the study's resolved config, its plan = the run ids in order, the baseline variant).
- ``runs``: one row per run id (hash of the resolved config + variant name): status, error, config, overrides,
  per-run figures (``results``), environment, profile, timestamps; read back as
  :class:`~trainlab.records.RunRecord` (``Store.runs``, ``Store.run``).
- ``epochs``: one row per (run, epoch) with that epoch's record.
- ``deployments``: one row per (run, deployment method) with its figures (``trainlab deploy``); a new
  deployment of the same run and method replaces the old row.

Every write is its own transaction, so a run killed at any point leaves every completed epoch in the store.
JSON columns hold plain data only (no pickles). Reports read the store and nothing else.

Faults are messages, never SQLite tracebacks: a full disk raises :class:`~trainlab.errors.DiskFull` (the failed
write is rolled back, so the store stays consistent), a file that is not a sound SQLite database raises
:class:`~trainlab.errors.StoreDamaged`. A reader (``Store(path, readonly=True)``) needs no write access: it
opens the file read-only, and immutable when even SQLite's shared-memory index cannot be created (read-only
media), and never creates or converts anything.
"""

from __future__ import annotations

import errno
import json
import math
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainlab.errors import DiskFull, OutputError, StoreDamaged
from trainlab.records import DeploymentRecord, RunRecord, RunStatus

if TYPE_CHECKING:
    from trainlab.study import Study

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id      TEXT PRIMARY KEY,
    study       TEXT NOT NULL,
    variant     TEXT NOT NULL,
    repeat      INTEGER NOT NULL,
    seed        INTEGER NOT NULL,
    status      TEXT NOT NULL,          -- pending | running | done | failed | diverged | skipped
    error       TEXT,
    detail      TEXT,
    config      TEXT NOT NULL,
    overrides   TEXT NOT NULL,
    results     TEXT,
    env         TEXT,
    profile     TEXT,
    created_at  TEXT NOT NULL,
    started_at  TEXT,
    finished_at TEXT,
    trial       INTEGER,                -- a [tune] trial's index among its variant's trials; NULL: a study run
    tuned       TEXT                    -- JSON: the values [tune] set for the run
);
CREATE TABLE IF NOT EXISTS epochs (
    run_id  TEXT NOT NULL,
    epoch   INTEGER NOT NULL,
    metrics TEXT NOT NULL,
    PRIMARY KEY (run_id, epoch)
);
CREATE TABLE IF NOT EXISTS deployments (
    run_id     TEXT NOT NULL,
    method     TEXT NOT NULL,           -- float (the baseline, measured alongside) | dynamic | static | onnx
    status     TEXT NOT NULL,           -- done | failed | skipped
    figures    TEXT NOT NULL,           -- JSON: sizes, latency, throughput, accuracy, notes (trainlab.deploy)
    error      TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (run_id, method)
);
"""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _clean(obj: Any) -> Any:
    """JSON-safe copy: NaN/inf become None (JSON has no NaN), tuples become lists."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


def _dumps(obj: Any) -> str:
    return json.dumps(_clean(obj), allow_nan=False)


# SQLite result codes (sqlite3.h) the store turns into messages; Python 3.11 exposes them as sqlite_errorcode.
SQLITE_READONLY, SQLITE_CORRUPT, SQLITE_CANTOPEN, SQLITE_FULL, SQLITE_NOTADB = 8, 11, 14, 13, 26


def _primary_code(exc: sqlite3.Error) -> int | None:
    """The primary result code of a SQLite error (Python gives the extended one, e.g. SQLITE_READONLY_CANTINIT)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code & 0xFF if code is not None else None


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk is full: SQLite's SQLITE_FULL or an OS ENOSPC / EDQUOT (quota)."""
    if isinstance(exc, sqlite3.Error):
        return _primary_code(exc) == SQLITE_FULL or "disk is full" in str(exc)
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    return "No space left on device" in str(exc)  # torch's writer wraps ENOSPC in a RuntimeError


# Columns added to ``runs`` after its first release: a store written before them gains them on open.
ADDED_COLUMNS = {"trial": "INTEGER", "tuned": "TEXT"}


def _add_columns(con: sqlite3.Connection) -> None:
    have = {row[1] for row in con.execute("PRAGMA table_info(runs)")}
    for name, kind in ADDED_COLUMNS.items():
        if name not in have:
            con.execute(f"ALTER TABLE runs ADD COLUMN {name} {kind}")  # names from the constant above only


class Store:
    """Read and write a study's results. ``readonly``: read only, without write access to the file or folder
    (``trainlab report``, ``export``, ``compare``); the writer (the driver) checks the file's integrity on open."""

    def __init__(self, path: str | Path, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._immutable = False
        if readonly:
            if not self.path.is_file():
                raise StoreDamaged(f"{self.path} does not exist")
            self._read("SELECT 1 FROM meta LIMIT 1")  # a file that is not a study's store fails here, clearly
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._errors(), closing(self._connect()) as con:
            check = con.execute("PRAGMA quick_check").fetchone()[0]  # O(file size): milliseconds for a study
            if check != "ok":
                raise StoreDamaged(f"{self.path} is damaged: SQLite's integrity check says {check!r}")
            with con:
                con.executescript(SCHEMA)
                _add_columns(con)

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """SQLite's errors as trainlab's messages (the statement that failed was rolled back)."""
        try:
            yield
        except sqlite3.Error as exc:
            code = _primary_code(exc)
            if is_disk_full(exc):
                raise DiskFull(f"the disk holding {self.path.parent} is full: {exc}") from None
            if code in (SQLITE_CORRUPT, SQLITE_NOTADB) or type(exc) is sqlite3.DatabaseError:
                # A reader cannot repair it; the driver can (engine.runner.open_store), so say how.
                fix = (
                    "; running the study again into this folder keeps it aside and rebuilds it" if self.readonly else ""
                )
                raise StoreDamaged(f"{self.path} is damaged: {exc}{fix}") from None
            if "no such table" in str(exc):
                raise StoreDamaged(f"{self.path} is not a trainlab study's store: {exc}") from None
            if code in (SQLITE_READONLY, SQLITE_CANTOPEN):
                raise OutputError(f"cannot {'read' if self.readonly else 'write'} {self.path}: {exc}") from None
            raise

    def _connect(self) -> sqlite3.Connection:
        if self.readonly:
            return self._connect_readonly()
        con = sqlite3.connect(self.path, timeout=60)
        try:
            con.execute("PRAGMA journal_mode=WAL")  # readers (report) never block the writing run
            con.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error:
            con.close()  # not left open for the caller's error path (it would hold the file, and its mount)
            raise
        con.row_factory = sqlite3.Row
        return con

    def _connect_readonly(self) -> sqlite3.Connection:
        """A read-only connection. A WAL store needs its shared-memory file (``-shm``), which SQLite cannot
        create on read-only media; there the file is opened as immutable (nothing can be writing it anyway)."""
        uri = self.path.resolve().as_uri()
        if not self._immutable:
            con = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=60)
            try:
                con.execute("SELECT 1 FROM sqlite_master LIMIT 1")
            except sqlite3.OperationalError as exc:
                con.close()
                if _primary_code(exc) not in (SQLITE_READONLY, SQLITE_CANTOPEN):
                    raise
                self._immutable = True
            else:
                con.row_factory = sqlite3.Row
                return con
        con = sqlite3.connect(f"{uri}?immutable=1", uri=True)
        con.row_factory = sqlite3.Row
        return con

    def _write(self, sql: str, args: tuple[Any, ...] = ()) -> None:
        with self._errors(), closing(self._connect()) as con, con:
            con.execute(sql, args)

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._errors(), closing(self._connect()) as con:
            return con.execute(sql, args).fetchall()

    # ---- study plan --------------------------------------------------------------------------------------------
    def set_plan(self, study: Study) -> None:
        """Record the study's config and its runs in order; new runs are added as pending."""
        with self._errors(), closing(self._connect()) as con, con:
            meta = {
                "study": study.config.model_dump(mode="json"),
                "study_path": str(study.path.resolve()) if study.path else None,  # absolute: read from anywhere
                "plan": [r.run_id for r in study.runs],
                "baseline": study.baseline,
                "swept_keys": study.swept_keys,
            }
            for k, v in meta.items():
                con.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (k, _dumps(v)))
            for r in study.runs:
                con.execute(
                    "INSERT OR IGNORE INTO runs (run_id, study, variant, repeat, seed, status, config, overrides,"
                    " created_at, trial, tuned) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?)",
                    (
                        r.run_id,
                        r.study,
                        r.variant,
                        r.repeat,
                        r.seed,
                        _dumps(r.config.model_dump(mode="json")),
                        _dumps(r.overrides),
                        _now(),
                        r.trial,
                        _dumps(r.tuned),
                    ),
                )

    def meta(self, key: str, default: Any = None) -> Any:
        rows = self._read("SELECT value FROM meta WHERE key = ?", (key,))
        return json.loads(rows[0]["value"]) if rows else default

    # ---- runs --------------------------------------------------------------------------------------------------
    def status(self, run_id: str) -> RunStatus | None:
        rows = self._read("SELECT status FROM runs WHERE run_id = ?", (run_id,))
        return rows[0]["status"] if rows else None

    def start_run(self, run_id: str, env: dict[str, Any], profile: dict[str, Any] | None) -> None:
        self._write(
            "UPDATE runs SET status='running', error=NULL, detail=NULL, env=?, profile=?, started_at=? WHERE run_id=?",
            (_dumps(env), _dumps(profile), _now(), run_id),
        )

    def finish_run(
        self,
        run_id: str,
        status: RunStatus,
        results: dict[str, Any] | None = None,
        error: str | None = None,
        detail: str | None = None,
    ) -> None:
        self._write(
            "UPDATE runs SET status=?, results=?, error=?, detail=?, finished_at=? WHERE run_id=?",
            (status, _dumps(results or {}), error, detail, _now(), run_id),
        )

    def runs(self, plan_only: bool = True) -> list[RunRecord]:
        """Run records, in plan order; ``plan_only`` hides runs of older plans."""
        rows = [self._row(r) for r in self._read("SELECT * FROM runs ORDER BY rowid")]
        if not plan_only:
            return rows
        plan = self.meta("plan", [])
        by_id = {r.run_id: r for r in rows}
        return [by_id[i] for i in plan if i in by_id]

    def run(self, run_id: str) -> RunRecord | None:
        rows = self._read("SELECT * FROM runs WHERE run_id = ?", (run_id,))
        return self._row(rows[0]) if rows else None

    @staticmethod
    def _row(row: sqlite3.Row) -> RunRecord:
        d = dict(row)
        for key in ("config", "overrides", "results", "env", "profile", "tuned"):
            d[key] = json.loads(d[key]) if d.get(key) else ({} if key != "profile" else None)
        return RunRecord.from_row(d)

    # ---- epochs ------------------------------------------------------------------------------------------------
    def add_epoch(self, run_id: str, metrics: dict[str, Any]) -> None:
        self._write(
            "INSERT OR REPLACE INTO epochs (run_id, epoch, metrics) VALUES (?, ?, ?)",
            (run_id, int(metrics["epoch"]), _dumps(metrics)),
        )

    def epochs(self, run_id: str) -> list[dict[str, Any]]:
        rows = self._read("SELECT metrics FROM epochs WHERE run_id = ? ORDER BY epoch", (run_id,))
        return [json.loads(r["metrics"]) for r in rows]

    def replace_epochs(self, run_id: str, rows: list[dict[str, Any]]) -> None:
        """Make ``rows`` the run's epochs, in one transaction (a resumed run's completed epochs)."""
        with self._errors(), closing(self._connect()) as con, con:
            con.execute("DELETE FROM epochs WHERE run_id = ?", (run_id,))
            con.executemany(
                "INSERT INTO epochs (run_id, epoch, metrics) VALUES (?, ?, ?)",
                [(run_id, int(r["epoch"]), _dumps(r)) for r in rows],
            )

    def truncate_epochs(self, run_id: str, after: int) -> None:
        """Delete epochs after ``after`` (a resumed run replays them)."""
        self._write("DELETE FROM epochs WHERE run_id = ? AND epoch > ?", (run_id, after))

    # ---- deployments -------------------------------------------------------------------------------------------
    def add_deployment(
        self, run_id: str, method: str, figures: dict[str, Any], status: str = "done", error: str | None = None
    ) -> None:
        """Record (or replace) the deployment ``method`` of run ``run_id``: its figures, status and error."""
        self._write(
            "INSERT OR REPLACE INTO deployments (run_id, method, status, figures, error, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (run_id, method, status, _dumps(figures), error, _now()),
        )

    def deployments(self) -> list[DeploymentRecord]:
        """Deployment records (run_id, method, status, figures, error, created_at), in the order written; a
        figure the stored row lacks reads as None (:class:`~trainlab.records.DeploymentFigures`)."""
        rows = self._read("SELECT * FROM deployments ORDER BY rowid")
        return [DeploymentRecord.from_row({**dict(r), "figures": json.loads(r["figures"])}) for r in rows]
