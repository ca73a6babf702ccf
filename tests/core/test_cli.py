"""The `suyuan` command as users run it: a real process, a real database, real key files."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pytest

from suyuan import crypto
from suyuan.errors import KeyStoreError
from suyuan.model import (
    Statement,
    format_time,
    new_nonce,
    parse_signed_statement,
    sign_statement,
    utcnow,
)
from tests.helpers import cli_in_python, run_cli

PASS = "cli test passphrase"


class Cli:
    """Runs `suyuan --db URL --keys DIR …` in a work folder."""

    def __init__(self, workdir: Path, db_url: str) -> None:
        self.workdir = workdir
        self.db_url = db_url
        self.keys = workdir / "keys"

    def __call__(self, *args: str, input: bytes | str | None = None, code: int = 0,
                 passphrase: str = PASS) -> tuple[str, str]:
        data = input.encode() if isinstance(input, str) else input
        result = run_cli("--db", self.db_url, "--keys", str(self.keys), *args, cwd=self.workdir,
                         env={"SUYUAN_KEY_PASSPHRASE": passphrase}, input=data)
        out, err = result.stdout.decode(), result.stderr.decode()
        assert "Traceback" not in err, err
        assert result.returncode == code, f"exit {result.returncode}, wanted {code}: {err}{out}"
        # An error is one line (an import adds one per refused row).
        if code == 2 or (code == 1 and args[0] not in ("import", "import-csv")):
            assert err.startswith("suyuan: error: ") and err.count("\n") == 1, err
        return out, err


@pytest.fixture
def cli(tmp_path: Path, db_url: str) -> Cli:
    return Cli(tmp_path, db_url)


@pytest.fixture
def ready(cli: Cli) -> Cli:
    cli("init", "--origin", "ledger.test/cli")
    for name, role in (("coop", "cooperative"), ("carrier", "carrier")):
        cli("keys", "new", name)
        cli("actors", "add", name, "--role", role)
    return cli


def _signed_line(name: str, key: crypto.SigningKey, **overrides: object) -> str:
    fields: dict = {"kind": "note", "actor": name,
                    "key_id": crypto.key_id(name, key.public_key).hex(),
                    "time": format_time(utcnow()), "nonce": new_nonce(), "body": {"text": "ok"}}
    fields.update(overrides)
    return sign_statement(Statement(**fields), key).to_line()


def _oversized_line(name: str, key: crypto.SigningKey) -> str:
    doc = json.loads(_signed_line(name, key))
    doc["statement"]["body"]["text"] = "x" * 40000
    return json.dumps(doc)


def _key(cli: Cli, name: str) -> crypto.SigningKey:
    data = (cli.keys / "actors" / f"{name}.key").read_bytes()
    return crypto.decrypt_private_key(data, PASS)


def test_init_creates_encrypted_keys_and_refuses_to_run_twice(cli: Cli) -> None:
    out, _ = cli("init", "--origin", "ledger.test/cli")
    assert "Initialised ledger ledger.test/cli" in out
    key_file = cli.keys / "log.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_bytes().startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----")
    with pytest.raises(KeyStoreError):
        crypto.decrypt_private_key(key_file.read_bytes(), "wrong")
    vkey, _ = cli("log", "vkey")
    assert crypto.parse_verifier_key(vkey.strip()).name == "ledger.test/cli"
    _, err = cli("init", "--origin", "ledger.test/cli", code=1)
    assert "already initialised" in err


def test_commands_before_init_say_how_to_start(cli: Cli) -> None:
    _, err = cli("verify", code=1)
    assert "suyuan init" in err


def test_usage_errors_exit_2(cli: Cli) -> None:
    _, err = cli("entry", "minus-one", code=2)
    assert err == ("suyuan: error: Invalid value for 'INDEX': 'minus-one' is not a valid "
                   "integer. (see: suyuan entry --help)\n")
    cli("init", code=2)
    _, err = cli("init", "--origin", "has space", code=2)
    assert "--origin" in err


def test_keys_are_never_overwritten_and_wrong_passphrase_is_clear(ready: Cli) -> None:
    before = (ready.keys / "actors" / "coop.key").read_bytes()
    _, err = ready("keys", "new", "coop", code=1)
    assert "refusing to overwrite" in err
    assert (ready.keys / "actors" / "coop.key").read_bytes() == before
    _, err = ready("append", "--as", "coop", input='{"kind":"note","body":{"text":"x"}}',
                   code=1, passphrase="not the passphrase")
    assert "wrong passphrase" in err


def test_sign_prints_verifiable_statements_and_appends_nothing(ready: Cli) -> None:
    size_before = json.loads(ready("log", "info", "--json")[0])["size"]
    drafts = '{"kind":"note","body":{"text":"一"}}\n{"kind":"note","body":{"text":"二"}}\n'
    out, _ = ready("sign", "--as", "coop", input=drafts)
    lines = out.splitlines()
    assert len(lines) == 2
    key = _key(ready, "coop")
    for line in lines:
        parse_signed_statement(line).verify(key.public_key)
    assert json.loads(ready("log", "info", "--json")[0])["size"] == size_before
    (ready.workdir / "s.ndjson").write_text(out)
    out, _ = ready("import", "s.ndjson")
    assert out.startswith("2 appended, 0 already in the log, 0 rejected")


def test_signed_statements_are_bound_to_the_ledger_and_refused_by_another_log(
    ready: Cli, tmp_path: Path
) -> None:
    draft = '{"kind":"note","body":{"text":"绑定 bound"}}'
    out, _ = ready("sign", "--as", "coop", input=draft)
    assert json.loads(out)["statement"]["log"] == "ledger.test/cli"
    out, _ = ready("sign", "--as", "coop", "--log", "other.example/log", input=draft)
    assert json.loads(out)["statement"]["log"] == "other.example/log"
    (ready.workdir / "foreign.ndjson").write_text(out)
    size = json.loads(ready("log", "info", "--json")[0])["size"]
    out, err = ready("import", "foreign.ndjson", code=1)
    assert "other.example/log" in err and "not this log" in err
    assert json.loads(ready("log", "info", "--json")[0])["size"] == size
    # Signing with no ledger at hand (a device offline) says that nothing binds the statement.
    offline = Cli(ready.workdir, f"sqlite:///{tmp_path / 'absent.db'}")
    out, err = offline("sign", "--as", "coop", input=draft)
    assert "log" not in json.loads(out)["statement"]
    assert "not bound to a log" in err
    assert not (tmp_path / "absent.db").exists()


def test_append_is_all_or_nothing_and_prints_index_and_leaf_hash(ready: Cli) -> None:
    out, _ = ready("append", "--as", "coop", "--json",
                   input='{"kind":"note","body":{"text":"a"}}')
    first = json.loads(out)
    raw = run_cli("--db", ready.db_url, "--keys", str(ready.keys), "entry",
                  str(first["index"]), "--raw", cwd=ready.workdir, check=True).stdout
    assert hashlib.sha256(b"\x00" + raw).hexdigest() == first["leaf_hash"]
    mixed = '{"kind":"note","body":{"text":"good"}}\n{"kind":"note","body":{}}\n'
    _, err = ready("append", "--as", "coop", input=mixed, code=1)
    assert "statement 2" in err and "nothing appended" in err
    assert json.loads(ready("log", "info", "--json")[0])["size"] == first["index"] + 1


def test_import_reports_each_bad_line_and_appends_the_good_ones_once(ready: Cli) -> None:
    coop, carrier = _key(ready, "coop"), _key(ready, "carrier")
    stranger = crypto.SigningKey.generate()
    good1 = _signed_line("coop", coop)
    good2 = _signed_line("carrier", carrier)
    lines = [
        good1,                                                       # 1 ok
        "{not json",                                                 # 2 malformed
        '{"statement": {"v": 1}, "signature": 5}',                   # 3 wrong types
        _signed_line("coop", carrier, key_id=crypto.key_id("coop", coop.public_key).hex()),  # 4
        _signed_line("stranger", stranger),                          # 5 unknown actor
        good1,                                                       # 6 replay of line 1
        _oversized_line("coop", coop),                              # 7 oversized
        "",                                                          # 8 blank: skipped
        good2,                                                       # 9 ok
        json.dumps({"statement": json.loads(good2)["statement"] | {"nonce": "forged-nonce-1"},
                    "signature": json.loads(good2)["signature"]}),  # 10 altered after signing
    ]
    (ready.workdir / "batch.ndjson").write_text("\n".join(lines) + "\n")
    out, err = ready("import", "batch.ndjson", code=1)
    assert out.startswith("2 appended, 1 already in the log, 6 rejected")
    reported = {int(line.split(":")[0].split()[1]): line for line in err.splitlines()}
    assert set(reported) == {2, 3, 4, 5, 7, 10}
    assert "malformed" in reported[2] and "bad_signature" in reported[4]
    assert "unknown actor" in reported[5] and "limit" in reported[7]
    assert "bad_signature" in reported[10]
    out, _ = ready("import", "batch.ndjson", "--json", code=1)
    summary = json.loads(out)
    assert summary["appended"] == 0 and summary["duplicates"] == 3 and summary["rejected"] == 6
    verdict = json.loads(ready("verify", "--json")[0])
    assert verdict["ok"] is True


def test_revoked_key_is_refused_on_import(ready: Cli) -> None:
    carrier = _key(ready, "carrier")
    ready("actors", "revoke", "carrier", "--reason", "lost")
    (ready.workdir / "late.ndjson").write_text(_signed_line("carrier", carrier) + "\n")
    _, err = ready("import", "late.ndjson", code=1)
    assert "line 1: revoked_key" in err


def test_checkpoint_witness_proof_and_offline_verification(ready: Cli) -> None:
    out, _ = ready("append", "--as", "coop", "--json",
                   input='{"kind":"note","body":{"text":"cherry harvest","lot":"L1"}}')
    index = json.loads(out)["index"]
    note_text, _ = ready("checkpoint")
    assert note_text.startswith("ledger.test/cli\n")
    _, again = ready("checkpoint")
    assert "not grown" in again
    ready("witness", "new", "witness.test/amr")
    ready("witness", "cosign", "--as", "witness.test/amr")
    policy, _ = ready("policy")
    (ready.workdir / "policy").write_text(policy)
    ready("proof", str(index), "-o", "p.tlog-proof")
    leaf = run_cli("--db", ready.db_url, "--keys", str(ready.keys), "entry", str(index),
                   "--raw", cwd=ready.workdir, check=True).stdout
    (ready.workdir / "leaf").write_bytes(leaf)
    # Offline: no --db at all, run from an empty folder.
    offline = ready.workdir / "offline"
    offline.mkdir()
    args = ["verify-proof", str(ready.workdir / "p.tlog-proof"), "--policy",
            str(ready.workdir / "policy"), "--leaf"]
    result = run_cli(*args, str(ready.workdir / "leaf"), cwd=offline)
    assert result.returncode == 0 and b"OK: entry" in result.stdout
    (ready.workdir / "bad-leaf").write_bytes(leaf.replace(b"cherry", b"cheery"))
    result = run_cli(*args, str(ready.workdir / "bad-leaf"), cwd=offline)
    assert result.returncode == 1 and b"does not verify" in result.stderr
    wrong_log = policy.replace(policy.splitlines()[0].split()[1],
                            str(crypto.verifier_key("ledger.test/cli",
                                                    crypto.SigningKey.generate().public_key)))
    (ready.workdir / "wrong-log-policy").write_text(wrong_log)
    result = run_cli("verify-proof", str(ready.workdir / "p.tlog-proof"), "--policy",
                     str(ready.workdir / "wrong-log-policy"), "--leaf",
                     str(ready.workdir / "leaf"), cwd=offline)
    assert result.returncode == 1 and b"Traceback" not in result.stderr
    assert b"does not verify" in result.stderr
    out, _ = ready("verify", "--policy", str(ready.workdir / "policy"))
    assert out.startswith("OK: ")
    ready("verify", "--policy", str(ready.workdir / "wrong-log-policy"), code=1)
    verdict = json.loads(ready("verify", "--json", "--jobs", "2")[0])
    assert verdict == verdict | {"ok": True, "checkpoints": 1, "cosignatures": 1}


def test_proof_before_any_checkpoint_is_a_clear_error(ready: Cli) -> None:
    _, err = ready("proof", "0", code=1)
    assert "suyuan checkpoint" in err


def test_missing_entry_is_a_clear_error(ready: Cli) -> None:
    size = json.loads(ready("log", "info", "--json")[0])["size"]
    _, err = ready("entry", "999", code=1)
    assert err == f"suyuan: error: no entry 999: the log has {size} entries\n"


def test_actors_list_shows_roles_and_keys(ready: Cli) -> None:
    rows = json.loads(ready("actors", "list", "--json")[0])
    assert [(r["name"], r["role"]) for r in rows] == [
        ("registrar", "registrar"), ("coop", "cooperative"), ("carrier", "carrier")]


def test_help_runs_without_a_database(tmp_path: Path) -> None:
    result = run_cli("--help", cwd=tmp_path, env={"SUYUAN_DATABASE_URL": ""})
    assert result.returncode == 0 and b"verify-proof" in result.stdout
    assert not (tmp_path / "data").exists()
    assert os.listdir(tmp_path) == []


def test_an_error_the_database_layer_logs_while_a_ctrl_c_unwinds_stays_off_the_terminal(
        tmp_path: Path) -> None:
    """A Ctrl-C in the middle of a query: SQLAlchemy logs "Error closing cursor" with a
    traceback, as the connection under it is gone. That one is not printed (the command says
    "interrupted"); what the database layer logs otherwise still is."""
    result = cli_in_python(
        "import logging\n"
        "from suyuan.storage import db\n"
        "checked = db.Database.is_current\n"
        "def is_current(self):\n"
        "    log = logging.getLogger('sqlalchemy.pool.impl.QueuePool')\n"
        "    try:\n"
        "        try:\n"
        "            raise KeyboardInterrupt\n"
        "        except KeyboardInterrupt:\n"
        "            raise RuntimeError('Cannot operate on a closed database.')\n"
        "    except RuntimeError:\n"
        "        log.error('Error closing cursor', exc_info=True)\n"
        "    try:\n"
        "        raise RuntimeError('the server went away')\n"
        "    except RuntimeError:\n"
        "        log.error('Exception during reset', exc_info=True)\n"
        "    return checked(self)\n"
        "db.Database.is_current = is_current\n",
        "--db", f"sqlite:///{tmp_path / 'ledger.db'}", "log", "vkey", cwd=tmp_path)
    err = result.stderr.decode()
    assert result.returncode == 1 and err.endswith("suyuan: error: no ledger here: run "
                                                   "`suyuan init --origin ORIGIN` (or give "
                                                   "--db / SUYUAN_DATABASE_URL)\n")
    assert "Error closing cursor" not in err and "KeyboardInterrupt" not in err
    assert "Exception during reset" in err and "RuntimeError: the server went away" in err
