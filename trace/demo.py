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
DEMO_PORT_ENV = "SUYUAN_DEMO_PORT"
DEMO_SERVE_ENV = "SUYUAN_DEMO_SERVE"

CHAIN_PAGES: list[tuple[str, str, str, str | None]] = [
    # (chain, GTIN, lot, serial): where each of the six Dalian chains ends up in a consumer's
    # hand; its QR code resolves to the provenance page.
    ("大樱桃 cherries (recalled gift box, 一物一码)", "02000000001012", "JZ-MZ-260605-G",
     "JZ00001"),
    ("刺参 dried sea cucumber", "02000000001036", "HZ-DSC-260512", None),
    ("扇贝 frozen scallop (export, FSMA 204)", "02000000001050", "CHP-FZ-260421", None),
    ("鲍鱼 abalone (north-south relay)", "02000000001067", "DL-AB-2025A", None),
    ("蓝莓 blueberries (two farms merged)", "02000000001081", "MKT-BB-260701-M", None),
    ("苹果 Fuji apples (months in CA storage)", "02000000001098", "WFD-FJ-251020", None),
]


def chain_path(gtin: str, lot: str, serial: str | None) -> str:
    """The GS1 Digital Link path of a lot or serialised unit."""
    path = f"/01/{gtin}/10/{lot}"
    return path + (f"/21/{serial}" if serial else "")


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
    print("All actors, codes and GTINs are fictitious; pesticide, cold-chain and yield limits are demo values.")

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

    serve_site()


def serve_site() -> None:
    port = int(os.environ.get(DEMO_PORT_ENV, "8000"))
    base = f"http://127.0.0.1:{port}"
    step(11, "The website: scan a QR code (or open a link) to see a product's journey, with "
             "the proof checked by your own browser.")
    for chain, gtin, lot, serial in CHAIN_PAGES:
        path = chain_path(gtin, lot, serial)
        print(f"    {chain}")
        print(f"      page  {base}{path}")
        print(f"      QR    {base}/qr{path}.svg")
    first = CHAIN_PAGES[0]
    print(f"    label sheet (12 gift boxes): {base}/labels/01/{first[1]}/10/{first[2]}"
          "?serials=JZ00001-JZ00012")
    print(f"    JSON API docs:               {base}/api/v1/docs")
    print(f"    tlog tiles:                  {base}/checkpoint")
    if os.environ.get(DEMO_SERVE_ENV, "1") == "0":
        print(f"\n({DEMO_SERVE_ENV}=0: not serving.) Serve later with: cd demo-data && "
              f"../.venv/bin/suyuan serve --port {port}")
        return
    print(f"\nServing on {base}/ — Ctrl-C stops. (Another port: {DEMO_PORT_ENV}=8080 make demo)")
    try:
        subprocess.run([*_suyuan(), "serve", "--port", str(port)], cwd=DEMO_DIR, check=False)
    except KeyboardInterrupt:
        pass
    print("\nDone. Try: cd demo-data && ../.venv/bin/suyuan --help   (or: suyuan kinds)")


def _entry_of(kind: str, lot: str) -> int:
    info = json.loads(run("lot", lot, "--json", show=False))
    return next(item["entry"] for item in info["history"] if item["kind"] == kind)


if __name__ == "__main__":
    main()
