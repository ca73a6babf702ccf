"""`make demo`: a fresh ledger in demo-data/, walked through step by step in plain words."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

DEMO_DIR = Path("demo-data")
DEMO_PASSPHRASE = "demo passphrase, not a secret"


def _suyuan() -> list[str]:
    script = Path(sys.executable).with_name("suyuan")
    return [str(script)] if script.exists() else [sys.executable, "-m", "suyuan.cli"]


def run(*args: str, stdin: str | None = None, out: Path | None = None, show: bool = True,
        expect_fail: bool = False) -> str:
    shown = "suyuan " + " ".join(shlex.quote(a) for a in args)
    if stdin is not None:
        shown = f"echo {shlex.quote(stdin)} | {shown}"
    if out is not None:
        shown += f" > {out.name}"
    print(f"  $ {shown}")
    result = subprocess.run([*_suyuan(), *args], input=stdin, capture_output=True, text=True,
                            cwd=DEMO_DIR)
    if (result.returncode != 0) != expect_fail:
        print(result.stdout + result.stderr, file=sys.stderr)
        raise SystemExit(f"demo step failed: {shown}")
    if out is not None:
        (DEMO_DIR / out).write_text(result.stdout)
    elif show:
        for line in (result.stdout + result.stderr).rstrip().splitlines():
            print(f"    {line}")
    return result.stdout


def step(number: int, title: str) -> None:
    print(f"\n{number}. {title}")


def load_dalian_world() -> None:
    """Load the fixtures in-process (faster than one command per hop), keeping each actor's
    key in the demo keystore so the reader can go on recording as them."""
    from suyuan.keystore import KeyStore
    from suyuan.storage.db import Database, sqlite_url
    from suyuan.world import load_world

    store = KeyStore(DEMO_DIR / "keys", lambda _creating: os.environ["SUYUAN_KEY_PASSPHRASE"])
    db = Database(sqlite_url((DEMO_DIR / "data" / "suyuan.db").resolve()))
    report = load_world(db, "registrar", store.load("actors", "registrar"),
                        progress=lambda what: print(f"    loaded {what}", flush=True)
                        if what.startswith(("actors", "limits", "locations", "products"))
                        else None)
    for name, key in report.keys.items():
        store.create("actors", name, key=key)
    db.dispose()
    print(f"    {report.entries} statements by {report.actors} actors, "
          f"{len(report.alerts)} alerts raised by the rules")


def main() -> None:
    os.environ.setdefault("SUYUAN_KEY_PASSPHRASE", DEMO_PASSPHRASE)
    os.environ.pop("SUYUAN_DATABASE_URL", None)
    os.environ.pop("SUYUAN_KEYS", None)
    if DEMO_DIR.exists():
        shutil.rmtree(DEMO_DIR)
    DEMO_DIR.mkdir()
    print("Suyuan (溯源) demo: the Dalian traceability ledger on SQLite, in ./demo-data")
    print("Keys are encrypted with a demo passphrase (set SUYUAN_KEY_PASSPHRASE to choose one).")
    print("All actors, codes and GTINs are fictitious; pesticide limits are demo values.")

    step(1, "Create the ledger: schema, the log's signing key and the registrar (entry 0).")
    run("init", "--origin", "ledger.suyuan.example/dalian")

    step(2, "Load the Dalian world: 18 partners register, publish limits, places and "
            "products, then record six supply chains (each statement signed by its maker).")
    load_dalian_world()

    step(3, "What the regulator sees: alerts raised by the rules on append.")
    run("alerts")

    step(4, "A box of 美早 cherries: everything known about its lot.")
    run("lot", "JZ-MZ-260605-G")

    step(5, "Trace back a supermarket blueberry lot to both farms, and forward from the "
            "cherry harvest lot to every box, shipment and sale (the recall scope).")
    run("trace", "back", "MKT-BB-260701-M")
    run("trace", "forward", "JZ-MZ-260605")

    step(6, "A clerk records a new hop from the command line; the rules check it.")
    run("record", "--as", "dalian-fresh-ecom", "sale", "lot=JZ-MZ-260605-G", "quantity=1 XBX",
        "serial=JZ00009", "channel=ecommerce", "event_time=2026-06-07T09:00:00+08:00")
    print("  Shipping boxes the shop does not hold is refused, and nothing is appended:")
    run("record", "--as", "dalian-fresh-ecom", "shipping", "shipment=ZS-DEMO-1",
        "lots=JZ-MZ-260605-G:999 XBX", "to=dl-supermarket", "location=dl-ecom-dc",
        expect_fail=True)

    step(7, "The log signs a checkpoint (C2SP signed note: origin, size, Merkle root), and the "
            "regulator's witness cosigns it after checking it extends what it saw before.")
    run("checkpoint")
    run("witness", "new", "witness.dalian-amr.example")
    run("witness", "cosign", "--as", "witness.dalian-amr.example")

    step(8, "A consumer checks the cherry residue test offline, with only the policy file: "
            "no database, no trust in the server.")
    index = _entry_of("test", "JZ-MZ-260605")
    run("policy", out=Path("policy.txt"))
    print("    " + (DEMO_DIR / "policy.txt").read_text().rstrip().replace("\n", "\n    "))
    run("proof", str(index), out=Path("test.tlog-proof"))
    print("    " + (DEMO_DIR / "test.tlog-proof").read_text().rstrip().replace("\n", "\n    "))
    run("entry", str(index), "--raw", out=Path("test.leaf"))
    run("verify-proof", "test.tlog-proof", "--policy", "policy.txt", "--leaf", "test.leaf")
    print("  The same leaf with the residue lowered from 0.45 to 0.05 does not verify:")
    leaf = (DEMO_DIR / "test.leaf").read_bytes()
    (DEMO_DIR / "forged.leaf").write_bytes(leaf.replace(b'"0.45"', b'"0.05"'))
    run("verify-proof", "test.tlog-proof", "--policy", "policy.txt", "--leaf", "forged.leaf",
        expect_fail=True)

    step(9, "A revoked key cannot sign any more, but history it signed still verifies.")
    run("actors", "revoke", "dl-coldchain", "--reason", "phone lost 手机丢失")
    run("append", "--as", "dl-coldchain", stdin=json.dumps({"kind": "note", "body": {
        "text": "this must be refused"}}), expect_fail=True)

    step(10, "Full audit against the policy: every signature and key state, the hash chain, "
             "every tree node, every checkpoint and cosignature.")
    run("checkpoint", show=False)
    run("witness", "cosign", "--as", "witness.dalian-amr.example")
    run("verify", "--policy", "policy.txt")
    print("\nDone. Try: cd demo-data && ../.venv/bin/suyuan --help   (or: suyuan kinds)")


def _entry_of(kind: str, lot: str) -> int:
    info = json.loads(run("lot", lot, "--json", show=False))
    return next(item["entry"] for item in info["history"] if item["kind"] == kind)


if __name__ == "__main__":
    main()
