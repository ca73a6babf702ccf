"""The project's shape: declared packages, layering, an installable wheel."""

from __future__ import annotations

import configparser
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from suyuan.storage.db import SCHEMA_REVISION, alembic_config

REPO = Path(__file__).resolve().parents[1]
FOLDERS = {"suyuan": REPO / "trace", "suyuan_web": REPO / "web"}


def _setup_cfg() -> configparser.ConfigParser:
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    return config


def _package_folders() -> dict[str, Path]:
    found = {}
    for top, root in FOLDERS.items():
        for init in root.rglob("__init__.py"):
            if ".venv" in init.parts:
                continue
            rel = init.parent.relative_to(root)
            found[".".join((top, *rel.parts))] = init.parent
    return found


def test_every_package_folder_is_declared_in_setup_cfg() -> None:
    config = _setup_cfg()
    declared = set(config["options"]["packages"].split())
    mapping = dict(
        line.split("=", 1) for line in config["options"]["package_dir"].strip().splitlines()
    )
    mapping = {k.strip(): v.strip() for k, v in mapping.items()}
    folders = _package_folders()
    assert set(folders) == declared
    for name, folder in folders.items():
        assert (REPO / mapping[name]).resolve() == folder.resolve(), name


def test_core_imports_neither_flask_nor_marshmallow() -> None:
    modules = sorted(
        "suyuan." + ".".join(p.relative_to(FOLDERS["suyuan"]).with_suffix("").parts)
        for p in FOLDERS["suyuan"].rglob("*.py")
        if p.name != "__init__.py" and "migrations" not in p.parts
    )
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('flask', 'marshmallow', "
        "'suyuan_web'))\n"
        "print(len(sys.modules)); assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "suyuan.cli" in modules and "suyuan.ledger" in modules


def test_no_module_imports_the_folder_names() -> None:
    offenders = []
    for root in FOLDERS.values():
        for path in root.rglob("*.py"):
            for line in path.read_text().splitlines():
                stripped = line.strip()
                if stripped.startswith(("import trace", "import web", "from trace",
                                        "from web", "from . ", "from .")):
                    offenders.append(f"{path}: {stripped}")
    assert offenders == []


def test_schema_revision_constant_is_the_migration_head() -> None:
    from alembic.script import ScriptDirectory

    assert ScriptDirectory.from_config(alembic_config()).get_heads() == [SCHEMA_REVISION]


@pytest.mark.slow
def test_wheel_installs_into_a_clean_virtualenv_and_runs_from_elsewhere(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w",
         str(dist), str(REPO)], capture_output=True, text=True, cwd=tmp_path,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = dist.glob("suyuan-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    installed = subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(wheel)],
                               capture_output=True, text=True)
    assert installed.returncode == 0, installed.stderr[-2000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run([str(env_dir / "bin" / "suyuan"), "--help"], capture_output=True,
                            text=True, cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert "verify-proof" in result.stdout
    check = subprocess.run(
        [str(python), "-c", "import suyuan, suyuan_web, suyuan.storage.migrations, trace; "
         "print(suyuan.__file__); print(trace.__file__)"],
        capture_output=True, text=True, cwd=elsewhere,
    )
    assert check.returncode == 0, check.stderr
    suyuan_file, trace_file = check.stdout.split()
    assert "site-packages/suyuan/" in suyuan_file
    assert "site-packages" not in trace_file  # the standard library's trace is untouched
    migrate = subprocess.run(
        [str(env_dir / "bin" / "suyuan"), "--db", f"sqlite:///{elsewhere / 'x.db'}", "--keys",
         str(elsewhere / "keys"), "init", "--origin", "wheel.test/log"],
        capture_output=True, text=True, cwd=elsewhere,
        env={"SUYUAN_KEY_PASSPHRASE": "p", "PATH": "/usr/bin:/bin"},
    )
    assert migrate.returncode == 0, migrate.stderr
