// tdproof serve's page: reads evidence (dropped, chosen or pasted), sends
// it to POST /v1/verify with "details": true, and shows the report the
// server renders from that response (POST /ui/report). It verifies
// nothing itself. No inline script, no external request.
"use strict";

(function () {
  const form = document.getElementById("evidence-form");
  const drop = document.getElementById("drop");
  const fileInput = document.getElementById("evidence-file");
  const ccelInput = document.getElementById("ccel-file");
  const text = document.getElementById("evidence-text");
  const nonce = document.getElementById("nonce");
  const policy = document.getElementById("policy");
  const status = document.getElementById("status");
  const fileStatus = document.getElementById("file-status");
  const result = document.getElementById("result");

  // The evidence file's bytes and the CCEL's, when given as files.
  let evidenceBytes = null;
  let ccelBytes = null;

  function hex(bytes) {
    let s = "";
    for (const b of bytes) s += b.toString(16).padStart(2, "0");
    return s;
  }

  function base64(bytes) {
    let s = "";
    for (let i = 0; i < bytes.length; i += 0x8000) {
      s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return btoa(s);
  }

  // A DCAP quote starts with its version (3, 4 or 5, little endian) and
  // the attestation key type 2 (ECDSA P-256).
  function isQuote(b) {
    return b.length > 48 && b[1] === 0 && (b[0] === 3 || b[0] === 4 || b[0] === 5) && b[2] === 2 && b[3] === 0;
  }

  // A CCEL (TCG event log) opens with the "Spec ID Event03" event.
  function isCCEL(b) {
    const sig = "Spec ID Event03";
    const head = new TextDecoder("latin1").decode(b.subarray(0, 96));
    return head.indexOf(sig) >= 0;
  }

  function isText(b) {
    const n = Math.min(b.length, 4096);
    for (let i = 0; i < n; i++) {
      const c = b[i];
      if (c === 9 || c === 10 || c === 13) continue;
      if (c < 32 || c === 127) return false;
    }
    return true;
  }

  // request builds the /v1/verify request from text or bytes.
  function request(str, bytes) {
    if (bytes && !isText(bytes)) {
      if (isQuote(bytes)) return { quote: hex(bytes) };
      // A DER certificate or a binary attestation: dstack evidence.
      return { dstack: base64(bytes) };
    }
    const t = (str !== null ? str : new TextDecoder().decode(bytes)).trim();
    if (t === "") return null;
    if (t[0] === "{") {
      let obj;
      try {
        obj = JSON.parse(t);
      } catch (e) {
        throw new Error("the JSON does not parse: " + e.message);
      }
      return { dstack: obj };
    }
    if (t.startsWith("-----BEGIN")) return { dstack: t };
    const h = t.replace(/^0x/i, "").replace(/\s+/g, "");
    if (/^([0-9a-fA-F]{2})+$/.test(h)) {
      const head = h.slice(0, 8).toLowerCase();
      if (head === "03000200" || head === "04000200" || head === "05000200") return { quote: h };
      return { dstack: h };
    }
    // base64 of a quote or of dstack evidence: the server tells.
    return { dstack: t };
  }

  async function readFile(f) {
    return new Uint8Array(await f.arrayBuffer());
  }

  async function takeFile(f, slot) {
    const b = await readFile(f);
    if (slot === "ccel" || (slot === "auto" && isCCEL(b))) {
      ccelBytes = b;
      fileStatus.textContent = "CCEL event log " + f.name + " (" + b.length + " bytes) will go with the quote.";
      return;
    }
    evidenceBytes = b;
    text.value = "";
    fileStatus.textContent = "Evidence file " + f.name + " (" + b.length + " bytes).";
  }

  fileInput.addEventListener("change", async () => {
    for (const f of fileInput.files) await takeFile(f, "auto");
  });
  ccelInput.addEventListener("change", async () => {
    if (ccelInput.files.length > 0) await takeFile(ccelInput.files[0], "ccel");
  });
  text.addEventListener("input", () => {
    if (text.value.trim() !== "") evidenceBytes = null;
  });
  ["dragenter", "dragover"].forEach((ev) =>
    drop.addEventListener(ev, (e) => {
      e.preventDefault();
      drop.classList.add("over");
    }),
  );
  ["dragleave", "drop"].forEach((ev) =>
    drop.addEventListener(ev, () => drop.classList.remove("over")),
  );
  drop.addEventListener("drop", async (e) => {
    e.preventDefault();
    for (const f of e.dataTransfer.files) await takeFile(f, "auto");
  });

  function problem(body, code) {
    try {
      const p = JSON.parse(body);
      return (p.title || "error " + code) + (p.detail ? ": " + p.detail : "");
    } catch (e) {
      return "error " + code;
    }
  }

  function showError(msg) {
    result.replaceChildren();
    const p = document.createElement("p");
    p.className = "error";
    p.id = "error";
    p.setAttribute("role", "alert");
    p.textContent = msg;
    result.appendChild(p);
    status.textContent = "";
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    let req;
    try {
      req = request(evidenceBytes ? null : text.value, evidenceBytes);
    } catch (err) {
      showError(err.message);
      return;
    }
    if (!req) {
      showError("Give the evidence: drop or choose a file, or paste it.");
      return;
    }
    if (ccelBytes) {
      if (!req.quote) {
        showError("A CCEL event log goes with a TDX quote (dstack evidence carries its own event log).");
        return;
      }
      req.cc_eventlog = base64(ccelBytes);
    }
    const n = nonce.value.trim();
    if (n !== "") req.nonce = n;
    const pid = policy.value.trim();
    if (pid !== "") req.policy_id = pid;
    req.details = true;
    status.textContent = "Verifying…";
    try {
      const vr = await fetch("/v1/verify", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(req),
      });
      const body = await vr.text();
      if (!vr.ok) {
        showError("The verifier refused the request: " + problem(body, vr.status));
        return;
      }
      const rr = await fetch("/ui/report", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: body,
      });
      const html = await rr.text();
      if (!rr.ok) {
        showError("The report could not be made: " + problem(html, rr.status));
        return;
      }
      // The server's html/template output: every value is escaped.
      result.innerHTML = html;
      status.textContent = "Done.";
      const h = document.getElementById("verdict-h");
      if (h) {
        h.tabIndex = -1;
        h.focus();
      }
    } catch (err) {
      showError("The request failed: " + err.message);
    }
  });
})();
