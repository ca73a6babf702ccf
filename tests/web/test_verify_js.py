"""The consumer page's in-browser proof check (web/static/verify.js), run in headless Chromium
under the site's CSP on real proofs from the Dalian ledger: valid proofs verify, and each way to
break one fails naming the record and the check (and the core's verifier agrees)."""

from __future__ import annotations

import base64
import dataclasses
import itertools
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pytest
from flask import Flask, Response, abort
from playwright.sync_api import Browser

import suyuan_web
from suyuan import crypto, ledger, note
from suyuan.errors import MalformedInput, VerificationError
from suyuan.storage import repo
from suyuan.storage.db import Database
from suyuan_web.common import CSP
from tests.web.browser import WatchedPage, serve, watched_page
from tests.web.conftest import Dalian

STATIC = Path(suyuan_web.__file__).parent / "static"
ORIGIN = "ledger.suyuan.example/dalian"
WITNESS = "witness.dalian-amr.example"
PHONE = {"width": 390, "height": 844}


# --- real proofs, and ways to break them -----------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One record as the page lists it: index, kind, exact leaf bytes and tlog-proof (if any)."""

    index: int
    kind: str
    leaf: bytes
    proof: str | None


@dataclass(frozen=True)
class Proofs:
    """The ledger's tlog-policy, its checkpoint size, a selection of entries and all of them."""

    policy: str
    size: int
    harvest: int
    entries: tuple[Entry, ...]
    everything: tuple[Entry, ...]
    log_key: crypto.SigningKey
    witness_key: crypto.SigningKey

    def entry(self, index: int) -> Entry:
        return self.everything[index]

    def but(self, changed: Entry) -> list[Entry]:
        """The selected entries with ``changed`` in place of the entry of the same index."""
        return [changed if entry.index == changed.index else entry for entry in self.entries]


@pytest.fixture(scope="session")
def real(dalian_master: Dalian) -> Proofs:
    db = Database(dalian_master.url)
    try:
        with db.reader() as session, session.begin():
            checkpoint = repo.latest_checkpoint(session)
            assert checkpoint is not None
            kinds = {row[0]: row[6] for row in repo.iter_entries(session)}
            everything = tuple(
                Entry(i, kinds[i], repo.leaf(session, i), str(ledger.tlog_proof(session, i)))
                for i in range(checkpoint.size))
            policy = str(ledger.policy(session))
    finally:
        db.dispose()
    size = checkpoint.size
    harvest = next(i for i, kind in kinds.items() if kind == "harvest")
    # First, inner, both sides of a power of two, the right edge (odd-sized subtrees there).
    chosen = sorted({0, harvest, harvest + 1, 63, 64, size - 2, size - 1})
    return Proofs(policy, size, harvest, tuple(everything[i] for i in chosen), everything,
                  dalian_master.log_key, dalian_master.witness_key)


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:]


def signed_checkpoint(entry: Entry) -> tuple[note.TlogProof, note.Note, note.Checkpoint]:
    proof = note.parse_tlog_proof(entry.proof or "")
    signed = note.parse_note(proof.checkpoint)
    return proof, signed, note.parse_checkpoint(signed.text)


def edit_proof(entry: Entry, *, path: Sequence[bytes] | None = None,
               checkpoint: note.Checkpoint | None = None,
               signatures: Sequence[note.NoteSignature] | None = None) -> str:
    """The entry's proof with its path, checkpoint body or signature lines replaced."""
    proof, signed, _ = signed_checkpoint(entry)
    text = checkpoint.body() if checkpoint else signed.text
    cosigned = note.Note(text, tuple(signatures or signed.signatures))
    return str(note.TlogProof(proof.index, tuple(proof.path if path is None else path),
                              str(cosigned)))


def core_verdict(policy: str, entry: Entry) -> str:
    """What the Python verifier says of the same proof: "ok" or the error."""
    try:
        note.verify_tlog_proof(entry.proof or "", entry.leaf, note.parse_policy(policy))
    except (VerificationError, MalformedInput) as exc:
        return str(exc)
    return "ok"


# --- the harness page, served with the site's CSP ---------------------------------------------


def render(policy: str, entries: Iterable[Entry], lang: str = "zh-CN",
           data: str | None = None) -> str:
    """The consumer page's proof panel, laid out as the page contract says."""
    if data is None:
        listed = []
        for entry in entries:
            item: dict[str, object] = {"index": entry.index, "kind": entry.kind,
                                       "leaf": base64.b64encode(entry.leaf).decode()}
            if entry.proof is not None:
                item["proof"] = entry.proof
            listed.append(item)
        data = json.dumps({"policy": policy, "entries": listed}, ensure_ascii=False)
    # As Jinja's |tojson does: nothing in the JSON can close the script element.
    data = data.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f"""<!doctype html>
<html lang="{lang}">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>verify</title>
<link rel="stylesheet" href="/static/site.css"><link rel="stylesheet" href="/static/verify.css">
</head>
<body><main>
<section id="verify-panel" class="card verify" data-state="pending">
  <h2>Proof</h2>
  <p id="verify-status">Proofs are available: <a href="/proofs.txt">download</a></p>
  <ol id="verify-steps"></ol>
</section>
<script type="application/json" id="suyuan-proofs">{data}</script>
<script src="/static/verify.js" defer></script>
</main></body>
</html>
"""


class Site:
    """Harness pages and the real /static files, served with the site's CSP header."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        self._names = itertools.count()
        self.app = Flask(__name__, static_folder=str(STATIC), static_url_path="/static")
        self.app.add_url_rule("/page/<name>", view_func=self._page)
        self.app.after_request(self._headers)
        self.url = ""

    def _page(self, name: str) -> str:
        if name not in self.pages:
            abort(404)
        return self.pages[name]

    @staticmethod
    def _headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = CSP
        return response

    def add(self, html: str) -> str:
        name = str(next(self._names))
        self.pages[name] = html
        return f"{self.url}/page/{name}"


@pytest.fixture(scope="session")
def site() -> Iterator[Site]:
    harness = Site()
    with serve(harness.app) as url:
        harness.url = url
        yield harness


@dataclass(frozen=True)
class Panel:
    state: str
    status: str
    steps: list[tuple[str, str]]  # (data-result, text) per <li>

    @property
    def failed_steps(self) -> list[str]:
        return [text for result, text in self.steps if result == "failed"]


class Checker(Protocol):
    def __call__(self, html: str, *, init_script: str | None = None,
                 screenshot: Path | None = None) -> Panel: ...


@pytest.fixture
def check(browser: Browser, site: Site) -> Checker:
    """``check(html)`` opens the page on a phone-sized screen, waits for verify.js to finish
    and reads the panel; the page must log no error and request nothing from elsewhere."""

    def open_panel(html: str, *, init_script: str | None = None,
                   screenshot: Path | None = None) -> Panel:
        with watched_page(browser, viewport=PHONE) as watched:
            page = watched.page
            if init_script:
                page.add_init_script(init_script)
            response = page.goto(site.add(html))
            assert response is not None and response.headers["content-security-policy"] == CSP
            page.wait_for_selector("#verify-panel:not([aria-busy])", timeout=15_000)
            panel = Panel(
                state=page.get_attribute("#verify-panel", "data-state") or "",
                status=page.inner_text("#verify-status"),
                steps=[(item.get_attribute("data-result") or "", item.inner_text())
                       for item in page.query_selector_all("#verify-steps > li")])
            if screenshot:
                page.locator("#verify-panel").screenshot(path=str(screenshot))
                print(f"screenshot: {screenshot}")
            watched.assert_clean(site.url)
        return panel

    return open_panel


def assert_failed(panel: Panel, message: str) -> None:
    assert panel.state == "failed", panel
    assert message in panel.status, panel.status
    assert panel.failed_steps, panel.steps


# --- valid proofs ------------------------------------------------------------------------------


def test_valid_proofs_verify_in_chinese(check: Checker, real: Proofs, tmp_path: Path) -> None:
    shot = tmp_path / "verified.png"
    panel = check(render(real.policy, real.entries), screenshot=shot)
    assert panel.state == "verified"
    assert panel.status == (
        f"已在本机验证：{len(real.entries)} 条记录均在账本中，检查点 {real.size} 由账本签名，"
        "并获 1 个见证方中的 1 个共同签名。")
    assert [result for result, _ in panel.steps] == ["ok"] * (5 + len(real.entries))
    assert panel.steps[6][1].startswith(f"记录 #{real.harvest}（采收）：其哈希与证明路径通向")
    assert shot.stat().st_size > 1000


def test_valid_proofs_verify_in_english_listing_each_check(check: Checker,
                                                           real: Proofs) -> None:
    panel = check(render(real.policy, real.entries, lang="en"))
    assert panel.state == "verified"
    assert panel.status == (
        f"Verified on this device: {len(real.entries)} records are in the log, checkpoint "
        f"{real.size} signed by the log and cosigned by 1 of 1 witnesses.")
    texts = [text for _, text in panel.steps]
    assert texts[0] == f"Trust policy read: log {ORIGIN}, 1 witness, quorum {WITNESS}"
    assert texts[1].startswith(f"Checkpoint {real.size} is signed by the log key {ORIGIN}+")
    assert texts[2] == f"Checkpoint {real.size} is for log {ORIGIN}, as the policy requires"
    assert texts[3].startswith(f"Checkpoint {real.size} cosigned by witness {WITNESS} at 20")
    assert texts[4] == (f"Witness quorum met for checkpoint {real.size}: 1 of 1 cosigned "
                        f"(needs {WITNESS})")
    assert texts[5] == ("Record #0 (actor_registered): its hash and proof lead to the root of "
                        f"checkpoint {real.size}, at position 0")
    assert len(texts) == 5 + len(real.entries)


def test_every_entry_of_the_log_verifies(check: Checker, real: Proofs) -> None:
    # Every position of a 107-leaf tree: every shape of RFC 9162 path the tree has.
    assert all(core_verdict(real.policy, entry) == "ok" for entry in real.everything)
    panel = check(render(real.policy, real.everything, lang="en"))
    assert panel.state == "verified", panel.failed_steps
    assert panel.status.startswith(f"Verified on this device: {real.size} records are in the log")


def test_policy_without_witnesses_verifies_on_the_log_signature(check: Checker,
                                                               real: Proofs) -> None:
    alone = note.parse_policy(f"log {note.parse_policy(real.policy).log}\nquorum none\n")
    panel = check(render(str(alone), real.entries, lang="en"))
    assert panel.state == "verified"
    assert panel.status.endswith(f"checkpoint {real.size} signed by the log (the policy "
                                 "requires no witness).")


def test_an_entry_without_proof_is_pending_and_the_rest_still_verifies(check: Checker,
                                                                      real: Proofs) -> None:
    newer = dataclasses.replace(real.entries[-1], index=real.size, proof=None)
    panel = check(render(real.policy, [*real.entries, newer], lang="en"))
    assert panel.state == "verified"
    assert panel.status.endswith(" 1 newer record is not yet in a checkpoint.")
    assert panel.steps[-1] == (
        "pending", f"Record #{real.size} (sale): newer than the latest checkpoint, not yet provable")


def test_only_unprovable_entries_leave_the_panel_pending(check: Checker, real: Proofs) -> None:
    newer = dataclasses.replace(real.entries[-1], index=real.size, proof=None)
    panel = check(render(real.policy, [newer]))
    assert panel.state == "pending"
    assert panel.status == "这些记录晚于最新的已签名检查点，暂时无法证明，请稍后再查。"


def test_browser_without_ed25519_is_unsupported_not_failed(check: Checker, real: Proofs) -> None:
    no_ed25519 = """
        SubtleCrypto.prototype.importKey = function () {
          return Promise.reject(new DOMException("Unrecognized name", "NotSupportedError"));
        };"""
    panel = check(render(real.policy, real.entries, lang="en"), init_script=no_ed25519)
    assert panel.state == "unsupported"
    assert panel.status.startswith("This browser cannot check the proofs itself")
    assert panel.status.endswith("Proofs are available: download")  # the page's links stay
    assert panel.steps == []


# --- each way to break a proof fails, naming the record and the check --------------------------


def test_changed_leaf_byte_fails_naming_the_entry(check: Checker, real: Proofs,
                                                  tmp_path: Path) -> None:
    entry = real.entry(real.harvest)
    # The quote before "signature" becomes '#': the record is no longer even JSON.
    changed = dataclasses.replace(entry, leaf=flip(entry.leaf, entry.leaf.index(b'"signature"')))
    assert "not proven" in core_verdict(real.policy, changed)
    shot = tmp_path / "failed.png"
    panel = check(render(real.policy, real.but(changed), lang="en"), screenshot=shot)
    why = (f"record #{real.harvest} (harvest): the record or its proof was altered: they do not "
           f"lead to the root of checkpoint {real.size}")
    assert panel.state == "failed"
    assert panel.status == f"Verification failed: {why}."
    assert panel.failed_steps == [why[0].upper() + why[1:]]
    assert shot.stat().st_size > 1000


def test_changed_leaf_byte_fails_in_chinese(check: Checker, real: Proofs) -> None:
    entry = real.entry(real.harvest)
    changed = dataclasses.replace(entry, leaf=flip(entry.leaf, 40))  # a digit of "prev"
    assert json.loads(changed.leaf)["index"] == real.harvest
    panel = check(render(real.policy, real.but(changed)))
    assert_failed(panel, f"验证失败：记录 #{real.harvest}（采收）：记录或证明已被改动：无法得出"
                         f"检查点 {real.size} 的根哈希。")


def test_changed_path_hash_fails(check: Checker, real: Proofs) -> None:
    proof, _, _ = signed_checkpoint(real.entry(64))
    path = [proof.path[0], flip(proof.path[1], 31), *proof.path[2:]]
    changed = dataclasses.replace(real.entry(64), proof=edit_proof(real.entry(64), path=path))
    assert "does not lead to the root" in core_verdict(real.policy, changed)
    panel = check(render(real.policy, real.but(changed), lang="en"))
    assert_failed(panel, "record #64 (transport): the record or its proof was altered")


@pytest.mark.parametrize("change", ["dropped", "added"])
def test_path_of_wrong_length_fails(check: Checker, real: Proofs, change: str) -> None:
    proof, _, _ = signed_checkpoint(real.entry(real.harvest))
    path = proof.path[:-1] if change == "dropped" else (*proof.path, proof.path[0])
    changed = dataclasses.replace(real.entry(real.harvest),
                                  proof=edit_proof(real.entry(real.harvest), path=path))
    assert "proof" in core_verdict(real.policy, changed)
    panel = check(render(real.policy, real.but(changed), lang="en"))
    assert_failed(panel, f"record #{real.harvest} (harvest): the proof has the wrong number of "
                         f"hashes for position {real.harvest} in checkpoint {real.size}")


@pytest.mark.parametrize("field", ["root", "size"])
def test_changed_checkpoint_fails_the_log_signature(check: Checker, real: Proofs,
                                                    field: str) -> None:
    entry = real.entry(real.harvest)
    _, _, cp = signed_checkpoint(entry)
    if field == "root":
        forged = dataclasses.replace(cp, root_hash=flip(cp.root_hash, 0))
    else:
        forged = dataclasses.replace(cp, size=cp.size + 1)
    changed = dataclasses.replace(entry, proof=edit_proof(entry, checkpoint=forged))
    assert "signature" in core_verdict(real.policy, changed)
    panel = check(render(real.policy, real.but(changed), lang="en"))
    assert_failed(panel, f"record #{real.harvest} (harvest): the log's signature on checkpoint "
                         f"{forged.size} does not verify (checkpoint or signature altered)")


def test_altered_log_signature_fails(check: Checker, real: Proofs) -> None:
    _, signed, _ = signed_checkpoint(real.entry(0))
    log, witness = signed.signatures
    assert log.name == ORIGIN
    forged = note.NoteSignature(log.name, log.key_id, flip(log.signature, 10))
    changed = dataclasses.replace(real.entry(0),
                                  proof=edit_proof(real.entry(0), signatures=[forged, witness]))
    assert "does not verify" in core_verdict(real.policy, changed)
    panel = check(render(real.policy, real.but(changed), lang="en"))
    assert_failed(panel, "record #0 (actor_registered): the log's signature on checkpoint")


def test_checkpoint_of_another_origin_fails(check: Checker, real: Proofs) -> None:
    # Signed by the real log key and cosigned by the real witness: only the origin is wrong.
    entry = real.entry(real.harvest)
    _, _, cp = signed_checkpoint(entry)
    other = dataclasses.replace(cp, origin="ledger.other.example/x")
    signed = note.sign_checkpoint(other, ORIGIN, real.log_key).with_signatures(
        note.cosign(other.body(), WITNESS, real.witness_key, 1_790_000_000))
    proof, _, _ = signed_checkpoint(entry)
    changed = dataclasses.replace(entry, proof=str(dataclasses.replace(proof,
                                                                       checkpoint=str(signed))))
    assert "origin" in core_verdict(real.policy, changed)
    panel = check(render(real.policy, real.but(changed), lang="en"))
    assert_failed(panel, f"record #{real.harvest} (harvest): checkpoint {real.size} is for log "
                         f"ledger.other.example/x, not {ORIGIN}")


def test_policy_with_another_log_key_fails(check: Checker, real: Proofs) -> None:
    policy = note.parse_policy(real.policy)
    other = crypto.verifier_key(ORIGIN, crypto.SigningKey.generate().public_key)
    changed = str(dataclasses.replace(policy, log=other))
    assert "not signed by" in core_verdict(changed, real.entry(0))
    panel = check(render(changed, real.entries, lang="en"))
    assert_failed(panel, f"record #0 (actor_registered): checkpoint {real.size} carries no "
                         f"signature by the log key {ORIGIN}+{other.key_id_hex}")


def test_altered_cosignature_fails(check: Checker, real: Proofs) -> None:
    entry = real.entry(real.harvest)
    _, signed, _ = signed_checkpoint(entry)
    log, witness = signed.signatures
    forged = note.NoteSignature(witness.name, witness.key_id,
                                witness.signature[:8] + flip(witness.signature[8:], 3))
    changed = dataclasses.replace(entry, proof=edit_proof(entry, signatures=[log, forged]))
    assert "cosignature" in core_verdict(real.policy, changed)
    panel = check(render(real.policy, real.but(changed), lang="en"))
    assert_failed(panel, f"record #{real.harvest} (harvest): the cosignature by witness "
                         f"{WITNESS} on checkpoint {real.size} does not verify")


def test_policy_with_another_witness_key_fails_the_quorum(check: Checker, real: Proofs) -> None:
    policy = note.parse_policy(real.policy)
    stranger = note.witness_verifier_key(WITNESS, crypto.SigningKey.generate().public_key)
    changed = str(dataclasses.replace(policy, witnesses=(stranger,)))
    assert "quorum not met" in core_verdict(changed, real.entry(0))
    panel = check(render(changed, real.entries, lang="en"))
    assert_failed(panel, f"witness quorum not met for checkpoint {real.size}: 0 valid "
                         f"cosignatures, the policy needs {WITNESS}")
    assert ("absent", f"Checkpoint {real.size}: no cosignature by witness {WITNESS}"
            ) in panel.steps


def test_quorum_of_two_witnesses_with_one_cosignature_fails(check: Checker,
                                                            real: Proofs) -> None:
    policy = note.parse_policy(real.policy)
    second = note.witness_verifier_key("witness.other.example",
                                       crypto.SigningKey.generate().public_key)
    both = str(note.Policy(log=policy.log, origin=ORIGIN,
                           witnesses=(*policy.witnesses, second), quorum=2))
    assert "quorum not met" in core_verdict(both, real.entry(0))
    panel = check(render(both, real.entries, lang="en"))
    assert_failed(panel, f"witness quorum not met for checkpoint {real.size}: 1 valid "
                         f"cosignature, the policy needs 2 of ({WITNESS}, witness.other.example)")


def test_quorum_of_two_among_one_witness_is_a_malformed_policy(check: Checker,
                                                               real: Proofs) -> None:
    text = real.policy.replace(f"quorum {WITNESS}\n", f"group two 2 {WITNESS}\nquorum two\n")
    assert "line 3" in core_verdict(text, real.entry(0))
    panel = check(render(text, real.entries, lang="en"))
    assert_failed(panel, "Verification failed: the trust policy is malformed (line 3).")


def test_proof_of_one_entry_on_the_leaf_of_another_fails(check: Checker, real: Proofs) -> None:
    changed = dataclasses.replace(real.entry(real.harvest),
                                  proof=real.entry(real.harvest + 1).proof)
    assert core_verdict(real.policy, changed) != "ok"
    panel = check(render(real.policy, real.but(changed), lang="en"))
    assert_failed(panel, f"record #{real.harvest} (harvest): the proof is for record "
                         f"#{real.harvest + 1}, not for #{real.harvest}")


def test_unreadable_proof_data_fails(check: Checker, real: Proofs) -> None:
    panel = check(render(real.policy, real.entries, lang="en", data='{"policy": '))
    assert_failed(panel, "Verification failed: the proof data on this page cannot be read.")


# --- the real site ---------------------------------------------------------------------------


def test_the_site_serves_verify_js_and_css_under_its_csp(
        shared_app: Flask, live_server: Callable[[Flask], str],
        browser_page: WatchedPage) -> None:
    base = live_server(shared_app)
    page = browser_page.page
    for name, kind in [("verify.js", "javascript"), ("verify.css", "text/css")]:
        response = page.request.get(f"{base}/static/{name}")
        assert response.status == 200
        assert kind in response.headers["content-type"]
        assert response.body() == (STATIC / name).read_bytes()
    home = page.goto(f"{base}/?lang=en")
    assert home is not None and home.headers["content-security-policy"] == CSP
    browser_page.assert_clean(base)
