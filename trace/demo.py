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


def main() -> None:
    os.environ.setdefault("SUYUAN_KEY_PASSPHRASE", DEMO_PASSPHRASE)
    os.environ.pop("SUYUAN_DATABASE_URL", None)
    os.environ.pop("SUYUAN_KEYS", None)
    if DEMO_DIR.exists():
        shutil.rmtree(DEMO_DIR)
    DEMO_DIR.mkdir()
    print("Suyuan (溯源) demo: a verifiable traceability ledger on SQLite, in ./demo-data")
    print("Keys are encrypted with a demo passphrase (set SUYUAN_KEY_PASSPHRASE to choose one).")

    step(1, "Create the ledger: schema, the log's signing key and the registrar (entry 0).")
    run("init", "--origin", "ledger.suyuan.example/dalian")

    step(2, "Three partners make keys and the registrar registers them in the log.")
    partners = [
        ("jinzhou-cherry-coop", "cooperative", "大连金州大樱桃专业合作社"),
        ("sf-coldchain", "carrier", "冷链物流(示例)"),
        ("dalian-fresh-shop", "retailer", "大连鲜果电商(示例)"),
    ]
    for name, role, display in partners:
        run("keys", "new", name)
        run("actors", "add", name, "--role", role, "--display-name", display)

    step(3, "They sign and append what happened (each statement signed with its own key).")
    run("append", "--as", "jinzhou-cherry-coop",
        stdin=json.dumps({"kind": "note", "body": {
            "text": "美早大樱桃开始采收 Mei Zao cherries: harvest started", "lot": "JZ-2026-0601"}},
            ensure_ascii=False))
    run("append", "--as", "sf-coldchain", stdin=json.dumps({"kind": "note", "body": {
        "text": "picked up 120 boxes at 4 °C", "lot": "JZ-2026-0601"}}))
    print("  A partner's system can also sign offline and send the signed lines later:")
    signed = run("sign", "--as", "dalian-fresh-shop", stdin=json.dumps({"kind": "note", "body": {
        "text": "received 120 boxes, on sale online", "lot": "JZ-2026-0601"}}),
        out=Path("signed.ndjson"))
    run("import", "signed.ndjson")
    print("  Importing the same file again appends nothing twice:")
    run("import", "signed.ndjson")
    assert signed

    step(4, "The log signs a checkpoint (C2SP signed note: origin, size, Merkle root).")
    run("checkpoint")

    step(5, "The regulator runs a witness, which cosigns only checkpoints consistent with "
            "the last one it saw.")
    run("witness", "new", "witness.dalian-amr.example")
    run("witness", "cosign", "--as", "witness.dalian-amr.example")

    step(6, "A consumer gets an offline proof for entry 5 (the carrier's pickup) and checks it "
            "with only the policy file: no database, no trust in the server.")
    run("policy", out=Path("policy.txt"))
    print("    " + (DEMO_DIR / "policy.txt").read_text().rstrip().replace("\n", "\n    "))
    run("proof", "5", out=Path("entry5.tlog-proof"))
    print("    " + (DEMO_DIR / "entry5.tlog-proof").read_text().rstrip().replace("\n", "\n    "))
    run("entry", "5", "--raw", out=Path("entry5.leaf"))
    run("verify-proof", "entry5.tlog-proof", "--policy", "policy.txt", "--leaf", "entry5.leaf")
    print("  A leaf changed by one byte does not verify:")
    leaf = (DEMO_DIR / "entry5.leaf").read_bytes()
    (DEMO_DIR / "entry5-forged.leaf").write_bytes(leaf.replace(b"120 boxes", b"150 boxes"))
    run("verify-proof", "entry5.tlog-proof", "--policy", "policy.txt", "--leaf",
        "entry5-forged.leaf", expect_fail=True)

    step(7, "A revoked key cannot sign any more, but history it signed still verifies.")
    run("actors", "revoke", "sf-coldchain", "--reason", "phone lost")
    run("append", "--as", "sf-coldchain", stdin=json.dumps({"kind": "note", "body": {
        "text": "this must be refused"}}), expect_fail=True)

    step(8, "Full audit: every signature and key state, the hash chain, every tree node, "
            "every checkpoint and cosignature.")
    run("checkpoint", show=False)
    run("witness", "cosign", "--as", "witness.dalian-amr.example")
    run("verify")
    print("\nDone. Try: cd demo-data && ../.venv/bin/suyuan --help")


if __name__ == "__main__":
    main()
