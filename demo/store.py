"""Where sessions live: the SessionStore (sessions by Gradio session hash, expiry, kept runs, Restore's
lookup) and the disk housekeeping that bounds it (quotas, trims, orphaned temp folders of dead processes)."""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Callable

from gancls.checkpoint import WEIGHTS_NAME
from gancls.memory import release_memory

from .gate import TrainingGate
from .session import RUN_FILES, Session, keep_run

KEEP_SECONDS = 24 * 3600  # a left session's checkpoint stays restorable this long
RUN_ID = re.compile(r"[0-9a-f]{32}")  # uuid4 hex: the only run ids the store ever makes
ANONYMOUS = "anonymous-"  # the key prefix of a raw API call's throwaway session


def folder_bytes(path: Path) -> int:
    """Bytes of the files under `path` (links counted once each; unreadable ones as 0)."""
    total = 0
    for f in path.rglob("*"):
        try:
            st = f.lstat()
        except OSError:
            continue
        if not f.is_symlink() and f.is_file():
            total += st.st_size // max(st.st_nlink, 1)  # a run kept by a hard link is not counted twice
    return total


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (a process we may not signal counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0
    return True


PID_FILE = ".pid"  # in the app's temp folder: the process that owns it
APP_TEMP_PREFIX = "gancls-app-"


def adopt_orphans(parent: Path, keep_root: Path | None, own: Path | None = None,
                  stale_seconds: float = KEEP_SECONDS) -> int:
    """At start-up: the temp folders of app processes that died (kill -9, a crash) give their runs to
    `keep_root`, where Restore finds them, and are deleted. Returns how many runs were adopted.

    A folder whose process still runs is left alone; one without a process id (an older version's)
    is adopted from, and deleted once it is `stale_seconds` old.
    """
    adopted = 0
    for d in parent.glob(f"{APP_TEMP_PREFIX}*"):
        if not d.is_dir() or (own is not None and d.resolve() == own.resolve()):
            continue
        try:
            pid: int | None = int((d / PID_FILE).read_text().strip())
        except (OSError, ValueError):
            pid = None
        if pid is not None and pid != os.getpid() and pid_alive(pid):
            continue
        for run in (r for r in d.iterdir() if r.is_dir() and RUN_ID.fullmatch(r.name)):
            weights, target = run / WEIGHTS_NAME, (keep_root / run.name) if keep_root is not None else None
            if target is None or not weights.is_file():
                continue
            kept = target / WEIGHTS_NAME
            if not kept.is_file() or kept.stat().st_mtime < weights.stat().st_mtime:  # the newer save wins
                adopted += keep_run(run, target)
        try:
            stale = time.time() - d.stat().st_mtime > stale_seconds
        except OSError:
            continue
        if pid is not None or stale:
            shutil.rmtree(d, ignore_errors=True)
    return adopted


class SessionStore:
    """Sessions by Gradio session hash; idle ones expire, the oldest idle ones go past `capacity`.

    Live sessions work in `root` (a temp folder); their checkpoints are also kept in
    `keep_root/<run id>` after every autosave and when the session ends, for `keep_seconds`, so the
    visitor can restore it (see `find_run`), after a crash of the server too. `keep_root` stays under
    `runs_quota` bytes and `root` under `temp_quota` (oldest out first, see `prune`).
    """

    def __init__(self, root: Path, idle_seconds: float = 15 * 60, capacity: int = 200,
                 keep_root: Path | None = None, keep_seconds: float = KEEP_SECONDS,
                 anonymous_seconds: float = 60.0, runs_quota: float = 2 * 2**30, temp_quota: float = 2**30,
                 train_slots: int = 1, train_waiting: int = 8):
        self.root, self.idle_seconds, self.capacity = Path(root), idle_seconds, capacity
        self.keep_root, self.keep_seconds = (Path(keep_root) if keep_root else None), keep_seconds
        self.anonymous_seconds, self.runs_quota, self.temp_quota = anonymous_seconds, runs_quota, temp_quota
        self.gate = TrainingGate(train_slots, train_waiting)
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._put_away: OrderedDict[str, str] = OrderedDict()  # session hash -> run id freed while idle
        self._lock = threading.Lock()
        self._next_prune = 0.0
        self._kept_mtime = -1  # the runs folder's mtime when it was last trimmed
        self.on_free: Callable[[Session], None] | None = None  # told when a session leaves (its class code ends)

    def get(self, session_hash: str | None) -> Session:
        """The caller's session, created on first use."""
        key = session_hash or f"{ANONYMOUS}{uuid.uuid4().hex}"  # no session: a throwaway one
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                run_id = uuid.uuid4().hex  # not the hash: nothing guessable on disk
                keep = self.keep_root / run_id if self.keep_root is not None else None
                session = self._sessions[key] = Session(id=key, run_dir=self.root / run_id, keep_dir=keep,
                                                        put_away=self._put_away.pop(key, None))
            self._sessions.move_to_end(key)
            session.touch()
            expired = self._expired(keep=key)
        for old in expired:
            self._free(old)
        if expired:
            release_memory()
        self.prune()
        return session

    def drop(self, session_hash: str | None) -> None:
        """Forget a session (the tab was closed or reloaded)."""
        with self._lock:
            session = self._sessions.pop(session_hash, None) if session_hash else None
        if session is not None and self._free(session):
            release_memory()
        self.prune()

    def _free(self, session: Session) -> bool:
        """Close a session that left the store (its run is kept) and drop its model; True if it held one."""
        if self.on_free is not None:
            self.on_free(session)
        had_model = session.trainer is not None or session.model is not None
        session.close()
        # A session still training ends its run on its own, saves, and is kept (see Session.training).
        return session.release() and had_model

    def put_away(self, session_hash: str | None) -> str | None:
        """The id of this visitor's run that was saved and freed while they were idle (Restore brings it
        back), unless they have trained, restored or reset since; None otherwise. Does not count as activity."""
        with self._lock:
            session = self._sessions.get(session_hash) if session_hash else None
            run_id = session.put_away if session is not None else self._put_away.get(session_hash or "")
        return run_id if run_id is not None and self.find_run(run_id) is not None else None

    def find_run(self, run_id: str | None) -> Path | None:
        """The checkpoint file of run `run_id` (a live session's or a kept one), or None."""
        if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id):
            return None  # never build a path from anything but our own id format
        with self._lock:
            live = [s.run_dir for s in self._sessions.values() if s.run_id == run_id]
        dirs = live + ([self.keep_root / run_id] if self.keep_root is not None else [])
        return next((d / WEIGHTS_NAME for d in dirs if (d / WEIGHTS_NAME).is_file()), None)

    def prune(self, now: float | None = None) -> int:
        """Keep both folders within their limits (at most once a minute unless `now` is given).

        Kept runs older than `keep_seconds` go, then the oldest kept runs until the runs folder is
        under `runs_quota` (those of live sessions last); in the temp folder, pictures and files made
        for downloads go oldest first until it is under `temp_quota`, then the folders of sessions
        that are gone. Returns how many kept runs were removed.
        """
        if now is None:
            if time.monotonic() < self._next_prune:
                return self._trim_kept_if_changed()
            self._next_prune, now = time.monotonic() + 60, time.time()
        self._trim_temp()
        if self.keep_root is None or not self.keep_root.is_dir():
            return 0
        removed = self._expire_kept(now)
        return removed + self._trim_kept()

    def _trim_kept_if_changed(self) -> int:
        # A run kept since the last look (the runs folder's mtime changes when one is renamed into it) is
        # trimmed for at once, not a minute later: 60 visitors leaving in 10 minutes overshot the quota
        # by 44 % between minutely prunes (bench/classroom.py visitors). One stat per call otherwise.
        try:
            changed = self.keep_root is not None and self.keep_root.stat().st_mtime_ns != self._kept_mtime
        except OSError:
            return 0
        return self._trim_kept() if changed else 0

    def _live_run_ids(self) -> set[str]:
        with self._lock:
            return {s.run_id for s in self._sessions.values()}

    def _trim_kept(self) -> int:
        assert self.keep_root is not None
        self._kept_mtime = self.keep_root.stat().st_mtime_ns  # before: a run kept meanwhile is seen next time
        runs = []
        for d in self.keep_root.iterdir():
            if d.is_dir() and RUN_ID.fullmatch(d.name):
                try:
                    runs.append((d.stat().st_mtime, d, folder_bytes(d)))
                except OSError:
                    continue
        total, live, removed = sum(r[2] for r in runs), self._live_run_ids(), 0
        # Oldest first; a live session's autosaved copy only when nothing else is left.
        for _, d, size in sorted(runs, key=lambda r: (r[1].name in live, r[0])):
            if total <= self.runs_quota:
                break
            shutil.rmtree(d, ignore_errors=True)
            total, removed = total - size, removed + 1
        return removed

    def _trim_temp(self) -> None:
        if not self.root.is_dir() or folder_bytes(self.root) <= self.temp_quota:
            return
        live = self._live_run_ids()
        for d in self.root.iterdir():  # folders of sessions that are gone (their runs were kept)
            if d.is_dir() and d.name not in live:
                shutil.rmtree(d, ignore_errors=True)
        files = []
        for f in self.root.rglob("*"):
            if f.is_file() and f.name not in RUN_FILES and f.parent.name != "uploaded" and not f.name.startswith("."):
                try:
                    files.append((f.stat().st_mtime, f))
                except OSError:
                    continue
        total, cutoff = folder_bytes(self.root), time.time() - 60  # a picture a page is fetching now stays
        for mtime, f in sorted(files):
            if total <= self.temp_quota or mtime > cutoff:
                break
            try:
                size = f.stat().st_size
                f.unlink()
                total -= size
            except OSError:
                continue

    def _expire_kept(self, now: float) -> int:
        assert self.keep_root is not None
        removed = 0
        for d in self.keep_root.iterdir():
            try:
                old = now - d.stat().st_mtime > self.keep_seconds
            except OSError:
                continue
            if d.is_dir() and (RUN_ID.fullmatch(d.name) or d.name.endswith((".tmp", ".old"))) and old:
                shutil.rmtree(d, ignore_errors=True)
                removed += 1
        return removed

    def shutdown(self, wait: float = 10.0) -> int:
        """Stop every session's training, wait up to `wait` s for the saves, keep the checkpoints; returns how many runs were kept."""
        with self._lock:
            sessions = list(self._sessions.values())
            self._sessions.clear()
        for s in sessions:
            s.stop.set()
        deadline = time.monotonic() + wait
        while any(s.running for s in sessions) and time.monotonic() < deadline:
            time.sleep(0.05)
        for s in sessions:
            s.close()
        return sum(1 for s in sessions if s.keep_dir is not None and (s.keep_dir / WEIGHTS_NAME).is_file())

    def __len__(self) -> int:
        return len(self._sessions)

    def _expired(self, keep: str) -> list[Session]:
        # Called with the lock held. Training sessions are never evicted. A raw API call's throwaway
        # session cannot be called again, so it goes as soon as it is idle for a moment.
        now, out = time.monotonic(), []
        for key, s in list(self._sessions.items()):
            too_many = len(self._sessions) > self.capacity
            idle = self.anonymous_seconds if key.startswith(ANONYMOUS) else self.idle_seconds
            if key != keep and not s.running and (too_many or now - s.last_used > idle):
                out.append(self._sessions.pop(key))
                had_run = s.model is not None or s.trainer is not None
                if s.keep_dir is not None and not key.startswith(ANONYMOUS) and (had_run or s.put_away):
                    # The visitor may come back to this tab: the page then says where the run went.
                    self._put_away[key] = s.run_id if had_run else s.put_away
                    while len(self._put_away) > 4 * self.capacity:
                        self._put_away.popitem(last=False)
        return out

    def sweep(self) -> int:
        """Free the sessions idle past their time now (get() does it too, but only when someone calls)."""
        with self._lock:
            expired = self._expired(keep="")
        for old in expired:
            self._free(old)
        if expired:
            release_memory()
        self.prune()
        return len(expired)
