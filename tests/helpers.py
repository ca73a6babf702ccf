"""Builders for tests: plain keyword-override functions, no fixtures."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from suyuan import crypto, ledger
from suyuan.model import SignedStatement, Statement, format_time, new_nonce, sign_statement, utcnow
from suyuan.storage.db import Database

ORIGIN = "ledger.test/dalian"


@dataclass
class Actor:
    name: str
    key: crypto.SigningKey

    @property
    def key_id(self) -> str:
        return crypto.key_id(self.name, self.key.public_key).hex()

    @property
    def vkey(self) -> str:
        return str(crypto.verifier_key(self.name, self.key.public_key))


@dataclass
class LedgerWorld:
    db: Database
    log_key: crypto.SigningKey
    registrar: Actor
    actors: dict[str, Actor] = field(default_factory=dict)

    def append(self, *signed: SignedStatement, now: datetime | None = None
               ) -> list[ledger.AppendResult]:
        with self.db.writer() as session, session.begin():
            return ledger.append(session, list(signed), now=now)

    def append_ok(self, *signed: SignedStatement) -> list[int]:
        results = self.append(*signed)
        for result in results:
            if result.error is not None:
                raise result.error
        return [r.index for r in results]  # type: ignore[misc]


def make_statement(actor: Actor, **overrides: Any) -> Statement:
    fields: dict[str, Any] = {
        "kind": "note",
        "actor": actor.name,
        "key_id": actor.key_id,
        "time": format_time(utcnow()),
        "nonce": new_nonce(),
        "body": {"text": "收获推迟 harvest delayed by rain"},
    }
    fields.update(overrides)
    return Statement(**fields)


def make_signed(actor: Actor, key: crypto.SigningKey | None = None, **overrides: Any
                ) -> SignedStatement:
    return sign_statement(make_statement(actor, **overrides), key or actor.key)


def register(world: LedgerWorld, name: str, role: str, **body: Any) -> Actor:
    actor = Actor(name, crypto.SigningKey.generate())
    world.append_ok(make_signed(
        world.registrar, kind="actor_registered",
        body={"name": name, "role": role, "vkey": actor.vkey, **body},
    ))
    world.actors[name] = actor
    return actor


def make_world(db: Database, *, actors: dict[str, str] | None = None) -> LedgerWorld:
    log_key = crypto.SigningKey.generate()
    registrar = Actor("registrar", crypto.SigningKey.generate())
    with db.writer() as session, session.begin():
        ledger.initialise(session, origin=ORIGIN, log_key=log_key, registrar="registrar",
                          registrar_key=registrar.key)
    world = LedgerWorld(db, log_key, registrar)
    if actors is None:
        actors = {"coop-jinzhou": "cooperative", "carrier-sf": "carrier"}
    for name, role in actors.items():
        register(world, name, role)
    return world


def cli_in_python(prelude: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    """Run ``prelude`` (Python source), then the command line with ``args``, in a fresh
    interpreter: as the console script runs it, with something added to watch it."""
    script = f"{prelude}\nfrom suyuan.__main__ import main\nmain({list(args)!r})\n"
    return subprocess.run([sys.executable, "-c", script], cwd=cwd, capture_output=True,
                          timeout=120)


def modules_loaded_by(*args: str, cwd: Path,
                      roots: tuple[str, ...] = ("sqlalchemy", "alembic", "flask")
                      ) -> tuple[int, list[str], str]:
    """(exit status, which modules under ``roots`` (by default SQLAlchemy, Alembic and Flask)
    the command loaded, what it printed before)."""
    result = cli_in_python(
        "import atexit, json, sys\n"
        "atexit.register(lambda: print(json.dumps(sorted(m for m in sys.modules "
        f"if m.split('.')[0] in {roots!r}))))", *args, cwd=cwd)
    *printed, loaded = result.stdout.decode().splitlines()
    return result.returncode, json.loads(loaded), "\n".join(printed)


def interrupt_cli(*args: str, cwd: Path, after: float) -> tuple[int, str]:
    """Run the real `suyuan` in its own process group, press Ctrl-C after ``after`` seconds
    (SIGINT to the whole group, as a terminal does) and return (exit status, stderr). Fails
    if any process of the group (a worker) outlives the command."""
    exe = Path(sys.executable).with_name("suyuan")
    proc = subprocess.Popen(
        [str(exe), *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(after)
    os.killpg(proc.pid, signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    try:
        os.killpg(proc.pid, 0)
    except ProcessLookupError:
        pass  # the group is gone: no worker left behind
    else:
        os.killpg(proc.pid, signal.SIGKILL)
        raise AssertionError("a process of the interrupted command outlived it")
    return proc.returncode, err.decode()


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None,
            input: bytes | None = None, check: bool = False) -> subprocess.CompletedProcess[bytes]:
    """Run the real `suyuan` console script in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    exe = Path(sys.executable).with_name("suyuan")
    result = subprocess.run([str(exe), *args], cwd=cwd, env=full_env, input=input,
                            capture_output=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(
            f"suyuan {' '.join(args)} exited {result.returncode}:\n"
            f"{result.stderr.decode(errors='replace')}"
        )
    return result
