/* Suyuan consumer page: check the records' inclusion proofs in the browser.
 *
 * Reads <script type="application/json" id="suyuan-proofs">{"policy": "...", "entries": [...]}
 * and, with WebCrypto only (SHA-256, Ed25519), checks for every entry that has a proof:
 *   - the C2SP tlog-policy (log key, witness keys, quorum) and tlog-proof parse strictly;
 *   - the checkpoint note is signed by the policy's log key (C2SP signed-note, type 0x01)
 *     and is for the policy's origin;
 *   - the policy witnesses' cosignatures (C2SP tlog-cosignature, type 0x04) verify and meet
 *     the quorum;
 *   - the leaf's JSON "index" is the proof's index (and the index the page shows);
 *   - SHA-256(0x00 || leaf) and the path lead to the checkpoint root (RFC 9162 §2.1.3.2, strict).
 * Then sets #verify-panel[data-state] to verified | failed | unsupported | pending, writes a
 * one-line summary in #verify-status and one <li data-result="ok|failed|absent|pending"> per
 * check in #verify-steps. aria-busy is set on the panel while checking.
 * No network requests, no eval, no inline handlers: it runs under CSP script-src 'self'.
 */
(() => {
  "use strict";

  // --- messages: <html lang> "en…" gives English, anything else Chinese (the site default) -----

  const KINDS_ZH = {
    actor_registered: "登记主体", key_added: "添加密钥", key_revoked: "吊销密钥",
    location_registered: "登记地块", product_registered: "登记产品",
    limits_published: "发布限量标准", planting: "种植", input_application: "投入品使用",
    harvest: "采收", cooling: "预冷", test: "检测", certificate: "证书", packing: "包装",
    storing: "仓储", shipping: "发货", transport: "运输", receiving: "收货",
    transformation: "加工", sale: "销售", recall: "召回", correction: "更正",
    epcis_event: "EPCIS 事件",
  };
  const plural = (n, one, many) => (n === 1 ? one : many);
  const MESSAGES = {
    en: {
      checking: () => "Checking the proofs on this device…",
      verified: (p) =>
        `Verified on this device: ${p.n} ${plural(p.n, "record is", "records are")} in the ` +
        `log, checkpoint ${p.size} signed by the log` +
        (p.total ? ` and cosigned by ${p.have} of ${p.total} witnesses.`
          : " (the policy requires no witness).") +
        (p.pending ? ` ${p.pending} newer ${plural(p.pending, "record is", "records are")} ` +
          "not yet in a checkpoint." : ""),
      failed: (p) => `Verification failed: ${p.what}.` +
        (p.more ? ` (${p.more} more ${plural(p.more, "problem", "problems")} below)` : ""),
      unsupported: () => "This browser cannot check the proofs itself (its WebCrypto has no " +
        "Ed25519). Nothing was found wrong; the proofs can be checked with other software.",
      all_pending: () => "These records are newer than the latest signed checkpoint: not yet " +
        "provable. Check again later.",
      nothing: () => "There are no records to check.",
      record: (p) => `record #${p.index}` + (p.kind ? ` (${p.kind})` : ""),
      about: (p) => `${p.what}: ${p.why}`,
      step_policy: (p) => `Trust policy read: log ${p.origin}, ${p.n} ` +
        `${plural(p.n, "witness", "witnesses")}, quorum ${p.rule}`,
      step_log: (p) => `Checkpoint ${p.size} is signed by the log key ${p.key}`,
      step_origin: (p) => `Checkpoint ${p.size} is for log ${p.origin}, as the policy requires`,
      step_cosig: (p) => `Checkpoint ${p.size} cosigned by witness ${p.name} at ${p.time}`,
      step_no_cosig: (p) => `Checkpoint ${p.size}: no cosignature by witness ${p.name}`,
      step_quorum: (p) => `Witness quorum met for checkpoint ${p.size}: ${p.have} of ` +
        `${p.total} cosigned (needs ${p.rule})`,
      step_entry: (p) => `${p.label}: its hash and proof lead to the root of checkpoint ` +
        `${p.size}, at position ${p.index}`,
      step_pending: (p) => `${p.label}: newer than the latest checkpoint, not yet provable`,
      rule_none: () => "none",
      rule: (p) => `${p.k} of (${p.members})`,
      // Why a check failed.
      e_data: () => "the proof data on this page cannot be read",
      e_policy: (p) => `the trust policy is malformed (line ${p.line})`,
      e_policy_count: (p) => `the trust policy has no ${p.what} line, or more than one`,
      e_proof: () => "its proof is malformed",
      e_leaf: () => "the record is not valid JSON with an index",
      e_note: () => "the checkpoint is malformed",
      e_index: (p) => `the proof is for record #${p.proof}, not for #${p.leaf}`,
      e_range: (p) => `position ${p.index} is not in checkpoint ${p.size}`,
      e_length: (p) => `the proof has the wrong number of hashes for position ${p.index} in ` +
        `checkpoint ${p.size}`,
      e_root: (p) => "the record or its proof was altered: they do not lead to the root of " +
        `checkpoint ${p.size}`,
      e_log_absent: (p) => `checkpoint ${p.size} carries no signature by the log key ${p.key}`,
      e_log_sig: (p) => `the log's signature on checkpoint ${p.size} does not verify ` +
        "(checkpoint or signature altered)",
      e_origin: (p) => `checkpoint ${p.size} is for log ${p.got}, not ${p.want}`,
      e_cosig: (p) => `the cosignature by witness ${p.name} on checkpoint ${p.size} does not ` +
        "verify",
      e_quorum: (p) => `witness quorum not met for checkpoint ${p.size}: ${p.have} valid ` +
        `${plural(p.have, "cosignature", "cosignatures")}, the policy needs ${p.rule}`,
    },
    zh: {
      checking: () => "正在本机核验证明……",
      verified: (p) => `已在本机验证：${p.n} 条记录均在账本中，检查点 ${p.size} 由账本签名` +
        (p.total ? `，并获 ${p.total} 个见证方中的 ${p.have} 个共同签名。`
          : "（信任策略不要求见证）。") +
        (p.pending ? `另有 ${p.pending} 条较新记录尚未纳入检查点。` : ""),
      failed: (p) => `验证失败：${p.what}。` + (p.more ? `（下方另有 ${p.more} 项问题）` : ""),
      unsupported: () => "此浏览器无法自行核验证明（其 WebCrypto 不支持 Ed25519）。" +
        "这并不表示发现问题；可用其他软件核验这些证明。",
      all_pending: () => "这些记录晚于最新的已签名检查点，暂时无法证明，请稍后再查。",
      nothing: () => "没有需要核验的记录。",
      record: (p) => `记录 #${p.index}` + (p.kind ? `（${KINDS_ZH[p.kind] || p.kind}）` : ""),
      about: (p) => `${p.what}：${p.why}`,
      step_policy: (p) => `已读取信任策略：账本 ${p.origin}，${p.n} 个见证方，法定数 ${p.rule}`,
      step_log: (p) => `检查点 ${p.size} 由账本密钥 ${p.key} 签名`,
      step_origin: (p) => `检查点 ${p.size} 属于账本 ${p.origin}，与信任策略一致`,
      step_cosig: (p) => `检查点 ${p.size} 已由见证方 ${p.name} 于 ${p.time} 共同签名`,
      step_no_cosig: (p) => `检查点 ${p.size}：无见证方 ${p.name} 的共同签名`,
      step_quorum: (p) => `检查点 ${p.size} 满足见证法定数：${p.total} 个见证方中 ${p.have} ` +
        `个已签名（要求 ${p.rule}）`,
      step_entry: (p) => `${p.label}：其哈希与证明路径通向检查点 ${p.size} 的根哈希，` +
        `位置 ${p.index}`,
      step_pending: (p) => `${p.label}：晚于最新检查点，暂时无法证明`,
      rule_none: () => "无需见证",
      rule: (p) => `（${p.members}）中的 ${p.k} 个`,
      e_data: () => "本页的证明数据无法读取",
      e_policy: (p) => `信任策略格式错误（第 ${p.line} 行）`,
      e_policy_count: (p) => `信任策略缺少 ${p.what} 行，或不止一行`,
      e_proof: () => "其证明格式错误",
      e_leaf: () => "记录内容不是带序号的有效 JSON",
      e_note: () => "检查点格式错误",
      e_index: (p) => `该证明属于记录 #${p.proof}，而不是 #${p.leaf}`,
      e_range: (p) => `位置 ${p.index} 不在检查点 ${p.size} 之内`,
      e_length: (p) => `证明路径的哈希个数与检查点 ${p.size} 中的位置 ${p.index} 不符`,
      e_root: (p) => `记录或证明已被改动：无法得出检查点 ${p.size} 的根哈希`,
      e_log_absent: (p) => `检查点 ${p.size} 没有账本密钥 ${p.key} 的签名`,
      e_log_sig: (p) => `检查点 ${p.size} 上的账本签名无效（检查点或签名被改动）`,
      e_origin: (p) => `检查点 ${p.size} 属于账本 ${p.got}，而不是 ${p.want}`,
      e_cosig: (p) => `见证方 ${p.name} 对检查点 ${p.size} 的共同签名无效`,
      e_quorum: (p) => `检查点 ${p.size} 未达到见证法定数：有效共同签名 ${p.have} 个，` +
        `策略要求 ${p.rule}`,
    },
  };

  /** A failed check: a message code and its parameters, translated when shown. */
  class Problem extends Error {
    constructor(code, params = {}) {
      super(code);
      this.code = code;
      this.params = params;
    }
  }

  // --- bytes, base64, hashes -------------------------------------------------------------------

  const subtle = globalThis.crypto && globalThis.crypto.subtle; // undefined outside HTTPS
  const utf8 = (text) => new TextEncoder().encode(text);
  const concat = (...parts) => {
    const out = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
    let at = 0;
    for (const part of parts) {
      out.set(part, at);
      at += part.length;
    }
    return out;
  };
  const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
  const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  const unhex = (text) => Uint8Array.from(text.match(/../g), (pair) => parseInt(pair, 16));
  const sha256 = async (...parts) =>
    new Uint8Array(await subtle.digest("SHA-256", concat(...parts)));
  const b64encode = (bytes) => btoa(Array.from(bytes, (b) => String.fromCharCode(b)).join(""));
  const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

  /** Strict standard base64: padded and canonical, so one value has exactly one spelling. */
  function b64decode(text, code) {
    if (typeof text !== "string" || !B64.test(text)) throw new Problem(code);
    const bytes = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
    if (b64encode(bytes) !== text) throw new Problem(code);
    return bytes;
  }

  const DECIMAL = /^(?:0|[1-9][0-9]*)$/; // no sign, no leading zeros
  const MAX_U64 = (1n << 64n) - 1n;
  const MAX_TIMESTAMP = (1n << 63n) - 1n; // tlog-cosignature
  const isKeyName = (name) => name.length > 0 && !/[\s+]/u.test(name); // signed-note names
  const hasControl = (text) => /[\x00-\x09\x0b-\x1f]/.test(text); // newline is the only one allowed

  // --- keys and the tlog-policy ----------------------------------------------------------------

  const ALG_ED25519 = 0x01;
  const ALG_COSIGNATURE = 0x04;

  /** signed-note key id: the first 4 bytes of SHA-256(name || 0x0A || alg || public key). */
  const keyId = async (name, alg, pub) =>
    (await sha256(utf8(name), Uint8Array.of(0x0a, alg), pub)).slice(0, 4);

  const importEd25519 = (pub) =>
    subtle.importKey("raw", pub, { name: "Ed25519" }, false, ["verify"]);
  const ed25519Verify = (key, signature, message) =>
    subtle.verify({ name: "Ed25519" }, key, signature, message);

  /** Parse `name+hexid+base64(alg||pubkey)` (null if invalid); the id must match. */
  async function parseVerifierKey(text, alg) {
    // Split at the first two '+' only: base64 may contain '+' too.
    const i = text.indexOf("+");
    const j = text.indexOf("+", i + 1);
    if (i < 0 || j < 0) return null;
    const name = text.slice(0, i), id = text.slice(i + 1, j);
    if (!isKeyName(name) || !/^[0-9a-f]{8}$/.test(id)) return null;
    try {
      const raw = b64decode(text.slice(j + 1), "e_policy");
      if (raw.length !== 33 || raw[0] !== alg) return null;
      const pub = raw.slice(1);
      if (hex(await keyId(name, alg, pub)) !== id) return null;
      return { name, id, pub: hex(pub), label: `${name}+${id}`, key: await importEd25519(pub) };
    } catch {
      return null;
    }
  }

  /** Parse a C2SP tlog-policy: one `log` line, `witness` and `group` lines, one `quorum` line. */
  async function parsePolicy(text) {
    if (typeof text !== "string") throw new Problem("e_data");
    // Tab and newline are the only control characters allowed.
    const control = /[\x00-\x08\x0b-\x1f\x7f]/.exec(text);
    if (control) {
      throw new Problem("e_policy", { line: text.slice(0, control.index).split("\n").length });
    }
    const logs = [], witnesses = [], groups = new Map(), defined = new Set();
    let quorum = null, quorums = 0;
    const lines = text.split("\n");
    for (let n = 0; n < lines.length; n++) {
      const line = lines[n].replace(/^[ \t]+|[ \t]+$/g, "");
      if (!line || line.startsWith("#")) continue;
      const [word, ...args] = line.split(/[ \t]+/);
      const bad = new Problem("e_policy", { line: n + 1 });
      const isNew = (name) => name !== "none" && !defined.has(name);
      if (word === "log") { // log <vkey> [<url>]
        const key = args.length <= 2 && (await parseVerifierKey(args[0] || "", ALG_ED25519));
        if (!key) throw bad;
        logs.push(key);
      } else if (word === "witness") { // witness <name> <vkey> [<url>]
        if (args.length < 2 || args.length > 3 || !isNew(args[0])) throw bad;
        const key = await parseVerifierKey(args[1], ALG_COSIGNATURE);
        if (!key || witnesses.some((w) => w.key.pub === key.pub)) throw bad;
        witnesses.push({ name: args[0], key });
        defined.add(args[0]);
      } else if (word === "group") { // group <name> <all|any|k> <member>...
        const [name, k, ...members] = args;
        if (!members.length || !isNew(name) || !members.every((m) => defined.has(m))) throw bad;
        const threshold = k === "all" ? members.length : k === "any" ? 1
          : DECIMAL.test(k) ? Number(k) : 0;
        if (threshold < 1 || threshold > members.length) throw bad;
        groups.set(name, { threshold, members });
        defined.add(name);
      } else if (word === "quorum") { // quorum <name|none>
        if (args.length !== 1 || (args[0] !== "none" && !defined.has(args[0]))) throw bad;
        quorum = args[0];
        quorums++;
      } else {
        throw bad;
      }
    }
    if (logs.length !== 1) throw new Problem("e_policy_count", { what: "log" });
    if (quorums !== 1) throw new Problem("e_policy_count", { what: "quorum" });
    return { log: logs[0], origin: logs[0].name, witnesses, groups, quorum };
  }

  /** Whether the witnesses named in `done` satisfy the policy's quorum. */
  function quorumMet(policy, done) {
    const holds = (name) => {
      const group = policy.groups.get(name);
      return group ? group.members.filter(holds).length >= group.threshold : done.has(name);
    };
    return policy.quorum === "none" || holds(policy.quorum);
  }

  function describeQuorum(policy, t) {
    const rule = (name) => {
      const group = policy.groups.get(name);
      if (!group) return name;
      return t("rule", { k: group.threshold, members: group.members.map(rule).join(", ") });
    };
    return policy.quorum === "none" ? t("rule_none") : rule(policy.quorum);
  }

  // --- signed notes, checkpoints, tlog-proofs --------------------------------------------------

  /** A signed note: text up to the last blank line, then `— name base64(keyid||sig)` lines. */
  function parseNote(data) {
    if (hasControl(data)) throw new Problem("e_note");
    const split = data.lastIndexOf("\n\n");
    if (split < 0) throw new Problem("e_note");
    const text = data.slice(0, split + 1), block = data.slice(split + 2);
    if (!block.endsWith("\n")) throw new Problem("e_note");
    const signatures = block.slice(0, -1).split("\n").map((line) => {
      const space = line.indexOf(" ", 2);
      const name = line.slice(2, space);
      if (!line.startsWith("\u2014 ") || space < 0 || !isKeyName(name)) {
        throw new Problem("e_note");
      }
      const raw = b64decode(line.slice(space + 1), "e_note");
      if (raw.length < 5) throw new Problem("e_note");
      return { name, id: hex(raw.slice(0, 4)), sig: raw.slice(4) };
    });
    return { text, signatures };
  }

  /** A checkpoint body: origin, decimal size, base64 root hash, optional extension lines. */
  function parseCheckpoint(text) {
    const lines = text.slice(0, -1).split("\n");
    if (lines.length < 3 || lines.some((line) => !line) || !DECIMAL.test(lines[1])) {
      throw new Problem("e_note");
    }
    const size = BigInt(lines[1]);
    const root = b64decode(lines[2], "e_note");
    if (size > MAX_U64 || root.length !== 32) throw new Problem("e_note");
    return { origin: lines[0], size, root };
  }

  /** A c2sp.org/tlog-proof@v1: header, [extra], index, path hashes, blank line, checkpoint. */
  function parseProof(text) {
    if (typeof text !== "string") throw new Problem("e_proof");
    const cut = text.indexOf("\n\n");
    if (cut < 0) throw new Problem("e_proof");
    const lines = text.slice(0, cut).split("\n");
    if (lines[0] !== "c2sp.org/tlog-proof@v1") throw new Problem("e_proof");
    let at = 1;
    if (lines[at] && lines[at].startsWith("extra ")) {
      b64decode(lines[at].slice("extra ".length), "e_proof"); // opaque, unauthenticated
      at++;
    }
    const match = /^index (0|[1-9][0-9]*)$/.exec(lines[at] || "");
    if (!match || BigInt(match[1]) > MAX_U64) throw new Problem("e_proof");
    const path = lines.slice(at + 1).map((line) => b64decode(line, "e_proof"));
    if (path.length > 64 || path.some((h) => h.length !== 32)) throw new Problem("e_proof");
    return { index: BigInt(match[1]), path, note: text.slice(cut + 2) };
  }

  function formatTime(seconds) {
    if (seconds > 8640000000000n) return String(seconds); // beyond what Date can show
    return new Date(Number(seconds) * 1000).toISOString().slice(0, 16).replace("T", " ") + " UTC";
  }

  /**
   * Check a checkpoint note against the policy: log signature, origin, cosignatures, quorum.
   * Returns {cp, have, steps, problem}; `problem` is set when a check failed (the later ones
   * are then not made).
   */
  async function checkCheckpoint(noteText, policy, t) {
    const result = { cp: null, have: 0, steps: [], problem: null };
    const ok = (text) => result.steps.push(["ok", text]);
    try {
      const note = parseNote(noteText);
      const cp = parseCheckpoint(note.text);
      const size = String(cp.size);
      const byKey = (key) => note.signatures.filter((s) => s.name === key.name && s.id === key.id);
      // Every line claiming to be by the log key must verify; lines by other keys are ignored.
      const logLines = byKey(policy.log);
      if (!logLines.length) throw new Problem("e_log_absent", { size, key: policy.log.label });
      for (const line of logLines) {
        if (line.sig.length !== 64
            || !(await ed25519Verify(policy.log.key, line.sig, utf8(note.text)))) {
          throw new Problem("e_log_sig", { size });
        }
      }
      ok(t("step_log", { size, key: policy.log.label }));
      if (cp.origin !== policy.origin) {
        throw new Problem("e_origin", { size, got: cp.origin, want: policy.origin });
      }
      ok(t("step_origin", { size, origin: cp.origin }));

      const done = new Set();
      for (const witness of policy.witnesses) {
        const lines = byKey(witness.key);
        if (!lines.length) {
          result.steps.push(["absent", t("step_no_cosig", { size, name: witness.name })]);
          continue;
        }
        let latest = 0n;
        for (const line of lines) {
          // After the key id: an 8-byte big-endian timestamp, then the Ed25519 signature.
          const bad = new Problem("e_cosig", { size, name: witness.name });
          if (line.sig.length !== 72) throw bad;
          const stamp = new DataView(line.sig.buffer, line.sig.byteOffset).getBigUint64(0);
          const signed = utf8(`cosignature/v1\ntime ${stamp}\n${note.text}`);
          if (stamp > MAX_TIMESTAMP
              || !(await ed25519Verify(witness.key.key, line.sig.slice(8), signed))) {
            throw bad;
          }
          if (stamp > latest) latest = stamp;
        }
        done.add(witness.name);
        ok(t("step_cosig", { size, name: witness.name, time: formatTime(latest) }));
      }
      result.have = done.size;
      const params = { size, have: done.size, total: policy.witnesses.length,
        rule: describeQuorum(policy, t) };
      if (!quorumMet(policy, done)) throw new Problem("e_quorum", params);
      ok(t("step_quorum", params));
      result.cp = cp;
    } catch (error) {
      result.problem = error;
    }
    return result;
  }

  /** RFC 9162 §2.1.3.2: the root `path` yields for `leafHash` at `index` of `size` (strict). */
  async function rootFromPath(leafHash, index, size, path) {
    const params = { index: String(index), size: String(size) };
    if (index >= size) throw new Problem("e_range", params);
    let fn = index, sn = size - 1n, r = leafHash; // BigInt: JS bit operators are 32-bit
    for (const p of path) {
      if (sn === 0n) throw new Problem("e_length", params);
      if ((fn & 1n) === 1n || fn === sn) {
        r = await sha256(Uint8Array.of(0x01), p, r);
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      } else {
        r = await sha256(Uint8Array.of(0x01), r, p);
      }
      fn >>= 1n;
      sn >>= 1n;
    }
    if (sn !== 0n) throw new Problem("e_length", params);
    return r;
  }

  /** The leaf's own "index" field (the entry bytes are JCS JSON), or null. */
  function leafIndex(leaf) {
    try {
      const entry = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(leaf));
      if (Number.isSafeInteger(entry.index) && entry.index >= 0) return BigInt(entry.index);
    } catch {
      // not UTF-8 JSON
    }
    return null;
  }

  const explain = (error, t) =>
    error instanceof Problem ? t(error.code, error.params) : t("e_data");

  // --- the whole check -------------------------------------------------------------------------

  /** Verify one entry with a proof; returns the checkpoint it is proven in. */
  async function verifyEntry(entry, policy, checkpoints, steps, t) {
    const proof = parseProof(entry.proof);
    const leaf = b64decode(entry.leaf, "e_leaf");
    // One check per distinct checkpoint: a page's proofs usually share the latest one.
    let checked = checkpoints.get(proof.note);
    if (!checked) {
      checked = await checkCheckpoint(proof.note, policy, t);
      checkpoints.set(proof.note, checked);
      steps.push(...checked.steps);
      if (checked.problem) steps.push(["failed", explain(checked.problem, t)]);
    }
    if (checked.problem) throw checked.problem;
    // A proof attached to another record is named as such; a record that is not even JSON
    // was altered, which the root check says.
    const own = leafIndex(leaf);
    if (own !== null && (own !== proof.index || String(entry.index) !== String(own))) {
      throw new Problem("e_index", { proof: String(proof.index), leaf: String(entry.index) });
    }
    const { size, root } = checked.cp;
    const leafHash = await sha256(Uint8Array.of(0x00), leaf);
    if (!equal(await rootFromPath(leafHash, proof.index, size, proof.path), root)) {
      throw new Problem("e_root", { size: String(size) });
    }
    if (own === null) throw new Problem("e_leaf");
    return checked;
  }

  /** Verify every entry; returns {state, summary, steps: [[result, text], …]}. */
  async function verifyAll(data, t) {
    const fail = (what) =>
      ({ state: "failed", summary: t("failed", { what }), steps: [["failed", what]] });
    if (!data || typeof data.policy !== "string" || !Array.isArray(data.entries)) {
      return fail(t("e_data"));
    }
    let policy;
    try {
      policy = await parsePolicy(data.policy);
    } catch (error) {
      return fail(explain(error, t)); // these messages name the policy
    }
    const rule = describeQuorum(policy, t);
    const steps = [["ok", t("step_policy",
      { origin: policy.origin, n: policy.witnesses.length, rule })]];
    const entrySteps = [], failures = [], checkpoints = new Map();
    let proven = 0, pending = 0;
    for (const entry of data.entries) {
      const label = t("record", { index: entry && entry.index, kind: entry && entry.kind });
      if (entry && (entry.proof === undefined || entry.proof === null)) {
        pending++; // newer than the latest checkpoint: nothing to check yet, nothing wrong
        entrySteps.push(["pending", t("step_pending", { label })]);
        continue;
      }
      try {
        const { cp } = await verifyEntry(entry, policy, checkpoints, steps, t);
        proven++;
        entrySteps.push(["ok", t("step_entry",
          { label, size: String(cp.size), index: String(entry.index) })]);
      } catch (error) {
        const what = t("about", { what: label, why: explain(error, t) });
        failures.push(what);
        entrySteps.push(["failed", what]);
      }
    }
    steps.push(...entrySteps);
    if (failures.length) {
      const summary = t("failed", { what: failures[0], more: failures.length - 1 });
      return { state: "failed", summary, steps };
    }
    if (!proven) {
      return { state: "pending", summary: t(pending ? "all_pending" : "nothing"), steps };
    }
    const used = [...checkpoints.values()];
    const summary = t("verified", {
      n: proven, pending, size: used.map((c) => String(c.cp.size)).join(", "),
      have: Math.min(...used.map((c) => c.have)), total: policy.witnesses.length,
    });
    return { state: "verified", summary, steps };
  }

  /** Whether WebCrypto verifies Ed25519: RFC 8032 §7.1 test 1 (empty message). */
  async function hasEd25519() {
    if (!subtle || typeof subtle.importKey !== "function") return false;
    try {
      const key = await importEd25519(
        unhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"));
      const signature = unhex(
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155" +
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b");
      return await ed25519Verify(key, signature, new Uint8Array(0));
    } catch {
      return false;
    }
  }

  // --- the page ------------------------------------------------------------------------------

  function show(panel, result) {
    panel.dataset.state = result.state;
    const status = document.getElementById("verify-status");
    if (status) status.textContent = result.summary;
    const list = document.getElementById("verify-steps");
    if (!list) return;
    list.replaceChildren(...result.steps.map(([outcome, text]) => {
      const item = document.createElement("li");
      item.dataset.result = outcome;
      item.textContent = text.charAt(0).toUpperCase() + text.slice(1); // "record #3…" starts it
      return item;
    }));
  }

  async function check(panel) {
    const lang = (document.documentElement.lang || "").toLowerCase().startsWith("en") ? "en" : "zh";
    const t = (code, params = {}) => MESSAGES[lang][code](params);
    const status = document.getElementById("verify-status");
    if (!(await hasEd25519())) {
      // Not a failure: keep the page's own text (and its download links), say why.
      panel.dataset.state = "unsupported";
      if (status) {
        const note = document.createElement("strong");
        note.textContent = t("unsupported") + " ";
        status.prepend(note);
      }
      return;
    }
    if (status) status.textContent = t("checking");
    let data = null;
    try {
      data = JSON.parse(document.getElementById("suyuan-proofs").textContent);
    } catch {
      // verifyAll reports unreadable data
    }
    let result;
    try {
      result = await verifyAll(data, t);
    } catch (error) {
      result = { state: "failed", summary: t("failed", { what: explain(error, t) }), steps: [] };
    }
    show(panel, result);
  }

  async function main() {
    const panel = document.getElementById("verify-panel");
    if (!panel) return;
    panel.setAttribute("aria-busy", "true"); // until the outcome is shown
    try {
      await check(panel);
    } finally {
      panel.removeAttribute("aria-busy");
    }
  }

  main();
})();
