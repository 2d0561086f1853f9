"""Tests of the reference receiver (tools/receiver/receiver.py) against docs/sync-protocol.md.

Each receiver runs as a subprocess on 127.0.0.1 (free ports chosen by the receiver itself), with a test CA
made at session start by make_test_ca.sh; clients are http.client / ssl. No traffic leaves 127.0.0.1.

    python3 -m pytest -q tools/receiver
"""

from __future__ import annotations

import base64
import copy
import email.utils
import gzip
import http.client
import json
import os
import pathlib
import queue
import random
import re
import shutil
import signal
import socket
import sqlite3
import ssl
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from types import SimpleNamespace

import pytest

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
DOC = ROOT / "docs" / "sync-protocol.md"
SCHEMA_FILE = ROOT / "docs" / "sync-batch.schema.json"
PATH = "/api/v1/edge/batches"
GW = "pecos-17-gw1"

sys.path.insert(0, str(HERE))
import receiver as R  # noqa: E402

try:
    import jsonschema
except ImportError:  # Debian: apt-get install python3-jsonschema
    jsonschema = None


# ----------------------------------------------------------------------------------------------------------
# Fixtures and helpers
# ----------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    d = tmp_path_factory.mktemp("pki")
    out = subprocess.run(["sh", str(HERE / "make_test_ca.sh"), str(d / "a")], capture_output=True, text=True,
                         check=True).stdout
    other = subprocess.run(["sh", str(HERE / "make_test_ca.sh"), str(d / "b")], capture_output=True, text=True,
                           check=True).stdout
    tokens = d / "tokens.txt"
    tokens.write_text("# test tokens\ntok-any\npecos-17-gw1:tok-gw1\nother-gw:tok-other\n")
    a, b = d / "a", d / "b"
    return SimpleNamespace(dir=d, ca=a / "ca.pem", cert=a / "server.pem", key=a / "server.key",
                           client_cert=a / "client.pem", client_key=a / "client.key",
                           pin=out.strip().splitlines()[-1], pin_file=a / "server.pin",
                           other_ca=b / "ca.pem", other_client_cert=b / "client.pem", other_client_key=b / "client.key",
                           other_pin=other.strip().splitlines()[-1], tokens=tokens)


class Receiver:
    """receiver.py as a subprocess; its stdout is collected in `lines`."""

    def __init__(self, pki, store, *extra, tokens=None):
        self.pki, self.store, self.extra = pki, store, extra
        self.tokens = tokens or pki.tokens
        self.start()

    def start(self):
        cmd = [sys.executable, str(HERE / "receiver.py"), "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
               "--cert", str(self.pki.cert), "--key", str(self.pki.key), "--tokens", str(self.tokens),
               "--store", str(self.store), *map(str, self.extra)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.lines: list[str] = []
        q: queue.Queue = queue.Queue()

        def pump():
            for line in self.proc.stdout:
                self.lines.append(line.rstrip("\n"))
                q.put(line)
            q.put(None)
        self.pump = threading.Thread(target=pump, daemon=True)
        self.pump.start()
        deadline = time.monotonic() + 15
        while True:
            try:
                line = q.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                self.proc.kill()
                raise RuntimeError("receiver did not start:\n" + "\n".join(self.lines))
            m = re.search(r"listening on https://127\.0\.0\.1:(\d+)/.*admin http://127\.0\.0\.1:(\d+)", line)
            if m:
                self.port, self.admin_port = int(m.group(1)), int(m.group(2))
                return

    def stop(self, sig=signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=15)
        self.pump.join(timeout=5)
        return rc

    # -- clients -------------------------------------------------------------------------------------------

    def context(self, ca=None, cert=None, key=None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(ca or self.pki.ca))
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if cert:
            ctx.load_cert_chain(str(cert), str(key))
        return ctx

    def conn(self, **kw) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context(**kw), timeout=10)

    def admin(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{self.admin_port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def fault(self, **spec):
        return self.admin("POST", "/faults", spec)

    def stats(self):
        return self.admin("GET", "/stats")

    def seqs(self, epoch, gateway=GW):
        return self.admin("GET", f"/seqs?gateway={gateway}&epoch={epoch}")

    def records(self, epoch, gateway=GW):
        return self.admin("GET", f"/records?gateway={gateway}&epoch={epoch}&limit=100000")["records"]


@pytest.fixture(scope="module")
def shared(pki, tmp_path_factory):
    r = Receiver(pki, tmp_path_factory.mktemp("rx") / "receiver.db")
    yield r
    assert r.stop() == 0


@pytest.fixture
def rx(shared):
    shared.fault(mode="none")
    yield shared
    shared.fault(mode="none")


def epoch() -> str:
    return uuid.uuid4().hex


def header(ep, first, last, gateway=GW):
    return {"schema": R.SCHEMA_ID,
            "gateway": {"id": gateway, "tenant": "acmeoil", "site": "Pecos 17 State Pad A", "software": "0.4.2"},
            "epoch": ep, "firstSeq": first, "lastSeq": last, "sentAt": int(time.time() * 1000),
            "clockSynchronized": True}


def readings(first, n, t0=1717423200000):
    """n readings of three series on rpc-1/rpc-2, one every 10 s per series; every 7th rpc-2 one times out."""
    out = []
    tags = [("rpc-1", "tubing_pressure", "psi"), ("rpc-1", "casing_pressure", "psi"), ("rpc-2", "well_state", None)]
    for i in range(first - 1, first - 1 + n):  # the content is a function of the seq
        dev, tag, units = tags[i % 3]
        bad = dev == "rpc-2" and i % 7 == 2
        out.append({"seq": i + 1, "device": dev, "tag": tag, "units": units, "t": t0 + (i // 3) * 10000 + i % 3,
                    "v": None if bad else round(300 + (i % 11) * 0.1, 1) if units else 1, "q": "timeout" if bad else "good"})
    return out


def batch(ep, first=1, n=30, gateway=GW):
    b = header(ep, first, first + n - 1, gateway)
    b["readings"] = R.encode_readings(readings(first, n))
    return b


def ikey(b):
    return f"{b['gateway']['id']}:{b['epoch']}:{b['firstSeq']}-{b['lastSeq']}"


def post(conn, body=None, token="tok-gw1", raw=None, gz=True, headers=None):
    """POSTs a batch; returns (status, response, parsed JSON body or None)."""
    data = raw if raw is not None else json.dumps(body, separators=(",", ":")).encode()
    if gz and raw is None:
        data = gzip.compress(data, 6)
    h = {"Content-Type": "application/json", "User-Agent": "edged/test"}
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    if gz:
        h["Content-Encoding"] = "gzip"
    try:
        h["Idempotency-Key"] = ikey(body)
    except (KeyError, TypeError):
        pass  # a probe, or a body made invalid on purpose
    h.update(headers or {})
    h = {k: v for k, v in h.items() if v is not None}
    conn.request("POST", PATH, body=data, headers=h)
    r = conn.getresponse()
    payload = r.read()
    return r.status, r, (json.loads(payload) if payload else None)


def doc_examples():
    """The JSON examples of docs/sync-protocol.md, by name (<!-- example: NAME --> before the block)."""
    text = DOC.read_text()
    out = {}
    for kind, name, block in re.findall(r"<!-- (example|example-record): ([\w-]+) -->\s*```json\n(.*?)```", text, re.S):
        out[name] = json.loads(block)
    return out


# ----------------------------------------------------------------------------------------------------------
# Happy path, keep-alive, the examples of the document
# ----------------------------------------------------------------------------------------------------------

def test_happy_path_stored_then_duplicates_on_one_connection(rx):
    ep = epoch()
    b = batch(ep, 1, 30)
    c = rx.conn()
    status, r, body = post(c, b)
    assert (status, body) == (200, {"stored": 30, "duplicates": 0})
    assert r.getheader("Content-Type") == "application/json"
    sock = c.sock
    status, _, body = post(c, b)  # the retry of a batch whose response was "lost"
    assert (status, body) == (200, {"stored": 0, "duplicates": 30})
    assert c.sock is sock, "the connection was not kept alive"
    assert rx.seqs(ep) == {"gateway": GW, "epoch": ep, "count": 30, "ranges": [[1, 30]]}
    # Stored once, and decoded back to exactly what was sent.
    got = rx.records(ep)
    want = readings(1, 30)
    assert [(g["seq"], g["device"], g["tag"], g.get("units"), g["t"], g["v"], g["q"]) for g in got] == \
           [(w["seq"], w["device"], w["tag"], w["units"], w["t"], w["v"], w["q"]) for w in want]
    last = rx.stats()["lastBatch"]
    assert last["epoch"] == ep and last["stored"] == 0 and last["duplicates"] == 30 and last["bodyBytes"] > 0
    assert any(f"{GW} epoch={ep} seq=1-30 records=30" in line and "stored=0 duplicates=30" in line for line in rx.lines)


def test_overlapping_batch_is_deduplicated_per_record(rx):
    ep = epoch()
    c = rx.conn()
    assert post(c, batch(ep, 1, 20))[2] == {"stored": 20, "duplicates": 0}
    assert post(c, batch(ep, 11, 20))[2] == {"stored": 10, "duplicates": 10}
    assert rx.seqs(ep)["ranges"] == [[1, 30]]


def test_same_batch_twice_at_once_is_stored_once(rx):
    ep = epoch()
    b = batch(ep, 1, 300)
    results = []

    def send():
        results.append(post(rx.conn(), b)[2])
    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r["stored"] for r in results) == 300
    assert sum(r["duplicates"] for r in results) == 900
    assert rx.seqs(ep)["count"] == 300


def test_examples_of_the_document(rx):
    ex = doc_examples()
    assert {"readings-batch", "alarm-batch", "probe-body", "alarm"} <= set(ex)
    rb = ex["readings-batch"]
    compact = json.dumps(rb, separators=(",", ":")).encode()
    assert len(compact) == 879, "§8.3 quotes 879 bytes of compact JSON"
    assert abs(len(gzip.compress(compact, 6, mtime=0)) - 445) <= 16, "§8.3 quotes about 445 bytes gzip'd"
    ep = epoch()  # a fresh epoch, so that the test can run against a used store
    for b in (ex["alarm-batch"], rb):
        b["epoch"] = ep
    c = rx.conn()
    assert post(c, ex["alarm-batch"]) [:3:2] == (200, {"stored": 1, "duplicates": 0})
    assert post(c, rb)[:3:2] == (200, {"stored": 11, "duplicates": 0})
    assert post(c, rb)[:3:2] == (200, {"stored": 0, "duplicates": 11})  # §8.4
    recs = {r["seq"]: r for r in rx.records(ep)}
    assert sorted(recs) == list(range(1001, 1013))
    assert [recs[s]["t"] for s in (1001, 1005, 1010)] == [1717423200120, 1717423210118, 1717423220121]
    assert [(recs[s]["v"], recs[s]["q"]) for s in (1004, 1007, 1012)] == [(None, "timeout"), (None, "timeout"), (305, "good")]
    assert recs[1003].get("units") is None and recs[1003]["v"] == 1
    assert recs[1008]["kind"] == "alarm" and recs[1008]["record"]["alarm"] == "rpc-2-comm"
    assert recs[1009]["kind"] == "gap" and recs[1009]["record"]["count"] == 560
    # §8.4, re-batched: two new readings on top of the known ones.
    bigger = copy.deepcopy(rb)
    bigger["lastSeq"] = 1015
    bigger["readings"].append({"device": "rpc-1", "tag": "tubing_pressure", "units": "psi", "seq": [1014, 1],
                               "t": [1717423230120, 10000], "v": [322, 322]})
    assert post(c, bigger)[:3:2] == (200, {"stored": 2, "duplicates": 11})
    # The alarm record of §4.2 inside a batch of its own.
    a = ex["alarm"]
    ab = header(ep, a["seq"], a["seq"])
    ab["alarms"] = [a]
    assert post(c, ab)[:3:2] == (200, {"stored": 1, "duplicates": 0})
    # The probe of §5.
    probe = ex["probe-body"]
    assert post(c, probe, headers={"X-Edged-Probe": "1"})[0] == 204


# ----------------------------------------------------------------------------------------------------------
# Authentication
# ----------------------------------------------------------------------------------------------------------

def test_tokens(rx):
    ep = epoch()
    b = batch(ep, 1, 5)
    c = rx.conn()
    status, r, body = post(c, b, token=None)
    assert status == 401 and body["error"] == "missing_token"
    assert r.getheader("WWW-Authenticate").startswith('Bearer realm="wellpulse-edge"')
    status, r, body = post(c, b, token="nope")
    assert status == 401 and body["error"] == "invalid_token" and 'error="invalid_token"' in r.getheader("WWW-Authenticate")
    status, _, body = post(c, b, headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert status == 401
    status, _, body = post(c, b, token="tok-other")  # a valid token, bound to another gateway
    assert status == 403 and body["error"] == "forbidden" and GW in body["message"]
    assert rx.seqs(ep)["count"] == 0
    assert post(c, b, token="tok-any")[0] == 200  # an unbound token may send for any gateway
    assert post(c, b, token="tok-gw1")[2] == {"stored": 0, "duplicates": 5}
    assert not any("tok-" in line for line in rx.lines), "a token was logged"


def test_tokens_file_is_reread(pki, tmp_path):
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("pecos-17-gw1:first-token\n")
    r = Receiver(pki, tmp_path / "r.db", tokens=tokens)
    try:
        c = r.conn()
        assert post(c, batch(epoch()), token="first-token")[0] == 200
        tokens.write_text("pecos-17-gw1:second-token\n")  # rotated
        os.utime(tokens, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
        assert post(c, batch(epoch()), token="first-token")[0] == 401
        assert post(c, batch(epoch()), token="second-token")[0] == 200
    finally:
        assert r.stop() == 0


# ----------------------------------------------------------------------------------------------------------
# Malformed requests: 400 with a clear message, nothing stored, the connection still usable
# ----------------------------------------------------------------------------------------------------------

def _mutations(ep):
    """(name, body or raw bytes, extra headers, expected error code, expected message fragment, expected path)."""
    good = batch(ep, 1, 9)

    def m(f):
        b = copy.deepcopy(good)
        f(b)
        return b

    def set_(path, value):
        def f(b):
            o = b
            for k in path[:-1]:
                o = o[k]
            o[path[-1]] = value
        return f

    def delete(path):
        def f(b):
            o = b
            for k in path[:-1]:
                o = o[k]
            del o[path[-1]]
        return f

    def add_gap(b):
        b["gaps"] = [{"seq": 10, "firstSeq": 5, "lastSeq": 10, "count": 1, "from": 0, "to": 0, "reason": "retention"}]
        b["lastSeq"] = 10

    plain = json.dumps(good).encode()
    probe = {k: v for k, v in good.items() if k not in ("firstSeq", "lastSeq", "readings")} | {"probe": True}
    unsync = ["clockUnsynchronized"]
    return [
        ("not gzip", plain, {}, "gzip", "does not inflate", None),
        ("truncated gzip", gzip.compress(plain)[:-12], {}, "gzip", "truncated", None),
        ("not json", gzip.compress(b"{\"schema\": "), {}, "json", "not JSON", None),
        ("NaN", gzip.compress(plain.replace(b"300.", b"NaN, 300.", 1)), {}, "json", "NaN", None),
        ("duplicate member", gzip.compress(plain.replace(b'"epoch"', b'"lastSeq": 9, "epoch"', 1)), {}, "json",
         "duplicate member 'lastSeq'", None),
        ("not an object", gzip.compress(b"[1, 2]"), {}, "schema", "JSON object", ""),
        ("missing epoch", m(delete(["epoch"])), {"Idempotency-Key": None}, "schema", "missing member 'epoch'", ""),
        ("unknown member", m(set_(["gateway", "firmware"], "x")), {}, "schema", "unknown member 'firmware'",
         "/gateway/firmware"),
        ("seq is a string", m(set_(["readings", 0, "seq", 1], "3")), {}, "schema", "must be an integer",
         "/readings/0/seq/1"),
        ("seq delta 0", m(set_(["readings", 0, "seq", 1], 0)), {}, "schema", "seq deltas are positive",
         "/readings/0/seq/1"),
        ("bad quality code", m(set_(["readings", 2, "q", 0], "exception-2")), {}, "schema", "not a quality code",
         "/readings/2/q/0"),
        ("bad tenant", m(set_(["gateway", "tenant"], "Acme Oil")), {}, "schema", "tenant slug", "/gateway/tenant"),
        ("boolean value", m(set_(["readings", 0, "v", 0], True)), {}, "schema", "not a boolean", "/readings/0/v/0"),
        ("future schema", m(set_(["schema"], "wellpulse.edge.batch/3")), {}, "unsupported_schema",
         "wellpulse.edge.batch/1, wellpulse.edge.batch/2", "/schema"),
        ("arrays of different lengths", m(lambda b: b["readings"][0]["t"].pop()), {}, "semantic", "parallel",
         "/readings/0/t"),
        ("null value of good quality", m(set_(["readings", 0, "v", 1], None)), {}, "semantic",
         "quality is good", "/readings/0/v/1"),
        ("value of bad quality", m(set_(["readings", 2, "v", 0], 1)), {}, "semantic", "has no value",
         "/readings/2/v/0"),
        ("seq outside the range", m(set_(["lastSeq"], 8)), {"Idempotency-Key": f"{GW}:{ep}:1-8"}, "semantic",
         "outside firstSeq-lastSeq", ""),
        ("range wider than the records", m(set_(["lastSeq"], 12)),
         {"Idempotency-Key": f"{GW}:{ep}:1-12"}, "semantic", "smallest and largest", ""),
        ("seq twice", m(lambda b: b["readings"].append(copy.deepcopy(b["readings"][0]))), {}, "semantic",
         "appears twice", ""),
        ("time decodes negative", m(set_(["readings", 0, "t", 1], -1717423300000)), {}, "semantic",
         "decodes to", "/readings/0/t/1"),
        ("no records", m(lambda b: b.pop("readings")), {}, "schema", "at least one record", ""),
        ("gap after its own seq", m(add_gap), {"Idempotency-Key": f"{GW}:{ep}:1-10"}, "semantic",
         "below its own seq", "/gaps/0/lastSeq"),
        ("idempotency key of another batch", good, {"Idempotency-Key": f"{GW}:{ep}:1-99"}, "idempotency_key",
         "does not name this batch", None),
        ("wrong content type", good, {"Content-Type": "text/plain"}, "content_type", "application/json", None),
        ("brotli", good, {"Content-Encoding": "br"}, "content_encoding", "use gzip", None),
        ("probe header on a batch", good, {"X-Edged-Probe": "1"}, "probe", "probe", None),
        ("probe body without the header", probe, {}, "probe", "X-Edged-Probe", None),
        ("clockUnsynchronized not an array", m(set_(unsync, {"1": 3})), {}, "schema", "must be an array",
         "/clockUnsynchronized"),
        ("clockUnsynchronized range not an array", m(set_(unsync, [[1, 2], 5])), {}, "schema",
         "an array of 2 integers", "/clockUnsynchronized/1"),
        ("clockUnsynchronized range of 3", m(set_(unsync, [[1, 2, 3]])), {}, "schema", "an array of 2 integers",
         "/clockUnsynchronized/0"),
        ("clockUnsynchronized range of 1", m(set_(unsync, [[4]])), {}, "schema", "an array of 2 integers",
         "/clockUnsynchronized/0"),
        ("clockUnsynchronized bound a string", m(set_(unsync, [[1, "4"]])), {}, "schema", "must be an integer",
         "/clockUnsynchronized/0/1"),
        ("clockUnsynchronized bound 0", m(set_(unsync, [[0, 4]])), {}, "schema", "must be >= 1",
         "/clockUnsynchronized/0/0"),
        ("clockUnsynchronized range reversed", m(set_(unsync, [[1, 2], [5, 4]])), {}, "semantic",
         "first seq is above its last", "/clockUnsynchronized/1"),
        ("clockUnsynchronized ranges overlap", m(set_(unsync, [[1, 4], [4, 6]])), {}, "semantic",
         "overlaps or precedes", "/clockUnsynchronized/1"),
        ("clockUnsynchronized ranges unsorted", m(set_(unsync, [[5, 6], [1, 2]])), {}, "semantic",
         "overlaps or precedes", "/clockUnsynchronized/1"),
        ("clockUnsynchronized above lastSeq", m(set_(unsync, [[1, 2], [8, 10]])), {}, "semantic",
         "outside firstSeq-lastSeq 1-9", "/clockUnsynchronized/1"),
        ("clockUnsynchronized in a probe", probe | {"clockUnsynchronized": [[1, 1]]}, {"X-Edged-Probe": "1"},
         "probe", "no clockUnsynchronized", "/clockUnsynchronized"),
    ] + _efm_mutations(ep)


def test_malformed_batches_are_400_with_a_clear_message(rx):
    ep = epoch()
    c = rx.conn()
    for name, body, headers, code, fragment, path in _mutations(ep):
        if isinstance(body, bytes):
            status, _, resp = post(c, raw=body, headers=headers)
        else:
            status, _, resp = post(c, body, headers=headers)
        assert status == 400, (name, status, resp)
        assert resp["error"] == code, (name, resp)
        assert fragment in resp["message"], (name, resp)
        if path is not None:
            assert resp.get("path") == path, (name, resp)
    assert rx.seqs(ep)["count"] == 0
    assert post(c, batch(ep, 1, 9))[:3:2] == (200, {"stored": 9, "duplicates": 0})  # same connection


def test_conflicting_record_is_409_and_nothing_of_the_batch_is_stored(rx):
    ep = epoch()
    c = rx.conn()
    assert post(c, batch(ep, 1, 6))[0] == 200
    b = batch(ep, 4, 6)  # 4-6 known, 7-9 new
    b["readings"][0]["v"][0] = 999.5  # seq 4 now says something else
    status, _, resp = post(c, b)
    assert status == 409 and resp["error"] == "conflict" and resp["seqs"] == [4]
    assert rx.seqs(ep)["ranges"] == [[1, 6]]


# ----------------------------------------------------------------------------------------------------------
# Per-record clock synchronization: clockUnsynchronized
# ----------------------------------------------------------------------------------------------------------

def _mixed_batch(ep):
    """Seq 101-115: readings, alarm events at 107 and 109, a gap record at 108, no record 111."""
    rows = [r for r in readings(101, 15) if r["seq"] not in (107, 108, 109, 111)]
    b = header(ep, 101, 115)
    b["readings"] = R.encode_readings(rows)
    b["alarms"] = [{"seq": s, "t": 1717423200000 + s, "alarm": "rpc-2-comm", "id": f"occ-{s}", "kind": "comm-loss",
                    "device": "rpc-2", "transition": tr, "priority": "medium", "by": "edged"}
                   for s, tr in ((107, "raised"), (109, "cleared"))]
    b["gaps"] = [{"seq": 108, "firstSeq": 1, "lastSeq": 50, "count": 50, "from": 1717000000000, "to": 1717000490000,
                  "reason": "storage-budget"}]
    return b


def test_clock_unsynchronized_flags_exactly_the_named_readings_and_alarms(rx):
    ep = epoch()
    b = _mixed_batch(ep)
    # Adjacent ranges; the second covers the gap record (never flagged), the third the absent seq 111.
    b["clockUnsynchronized"] = [[101, 103], [104, 108], [110, 111]]
    c = rx.conn()
    assert post(c, b)[:3:2] == (200, {"stored": 14, "duplicates": 0})
    got = rx.records(ep)
    assert len(got) == 14
    flagged = {r["seq"] for r in got if "clockSynchronized" in r}
    assert flagged == {101, 102, 103, 104, 105, 106, 107, 110}
    assert all(r["clockSynchronized"] is False for r in got if r["seq"] in flagged)
    by_seq = {r["seq"]: r for r in got}
    assert by_seq[107]["kind"] == "alarm" and by_seq[108]["kind"] == "gap" and by_seq[109]["kind"] == "alarm"
    assert got == R.expand_records(b)  # the admin view and the reference decoder agree
    # A duplicate keeps what was stored first, whatever its flags say now.
    b2 = copy.deepcopy(b)
    b2["clockUnsynchronized"] = [[109, 115]]
    assert post(c, b2)[:3:2] == (200, {"stored": 0, "duplicates": 14})
    del b2["clockUnsynchronized"]
    assert post(c, b2)[:3:2] == (200, {"stored": 0, "duplicates": 14})
    assert rx.records(ep) == got
    # The whole batch as one range.
    ep2 = epoch()
    b3 = _mixed_batch(ep2)
    b3["clockUnsynchronized"] = [[101, 115]]
    assert post(c, b3)[:3:2] == (200, {"stored": 14, "duplicates": 0})
    assert {r["seq"] for r in rx.records(ep2) if r.get("clockSynchronized") is False} == \
           set(range(101, 116)) - {108, 111}


def test_without_clock_unsynchronized_every_record_is_synchronized(rx):
    c = rx.conn()
    for ranges in (None, []):
        ep = epoch()
        b = _mixed_batch(ep)
        b["clockSynchronized"] = False  # the clock at sentAt says nothing about the records
        if ranges is not None:
            b["clockUnsynchronized"] = ranges
        assert post(c, b)[:3:2] == (200, {"stored": 14, "duplicates": 0})
        got = rx.records(ep)
        assert len(got) == 14 and not any("clockSynchronized" in r for r in got)


def test_store_made_by_an_older_receiver_gets_the_clock_column(tmp_path):
    path = tmp_path / "old.db"
    column = "    clock_unsync INTEGER NOT NULL DEFAULT 0,"
    old_sql = "\n".join(line for line in R.SCHEMA_SQL.splitlines() if not line.startswith(column))
    assert old_sql != R.SCHEMA_SQL
    db = sqlite3.connect(path)
    db.executescript(old_sql)
    db.close()
    store = R.Store(str(path))
    try:
        ep = epoch()
        b = _mixed_batch(ep)
        b["clockUnsynchronized"] = [[109, 110]]
        assert store.ingest(R.parse_batch(b), 0) == (14, 0)
        e = _efm_batch(ep, [efm_hourly(201)])  # the EFM tables are made in a store that lacked them
        assert store.ingest(R.parse_batch(e), 0) == (1, 0)
        assert [r["key"] for r in store.efm_records(GW)] == ["hourly@2024-06-03T08:00:00"]
        assert {r["seq"] for r in store.records(GW, ep, 0, 100) if "clockSynchronized" in r} == {109, 110}
    finally:
        store.close()
    R.Store(str(path)).close()  # opening it again changes nothing


# ----------------------------------------------------------------------------------------------------------
# EFM records and gaps (wellpulse.edge.batch/2)
# ----------------------------------------------------------------------------------------------------------

SCANNER_FIELDS = [("fr1_volume", "MCF"), ("fr1_mass", "lbm"), ("fr1_energy", "MMBTU"), ("dp_average", "inH2O"),
                  ("sp_average", "psia"), ("temperature_average", "degF"), ("fr1_run_time", "s"),
                  ("turbine1_volume", "MCF"), ("turbine1_run_time", "s")] + \
                 [(f"spare_{i}", None) for i in range(10, 17)]


def _fnv1a64(data: bytes) -> str:  # written out again here, so that the receiver's is checked, not trusted
    h = 0xCBF29CE484222325
    for byte in data:
        h ^= byte
        h = (h * 0x100000001B3) % 2**64
    return "%016x" % h


def _stamp_floats(device_time: str) -> tuple[float, float]:
    """(MMDDYY, HHMMSS) as an Enron device writes them."""
    y, mo, d, h, mi, se = map(int, re.findall(r"\d+", device_time))
    return float(mo * 10000 + d * 100 + y % 100), float(h * 10000 + mi * 100 + se)


def efm_hourly(seq, device_time="2024-06-03T08:00:00", volume=12.5, kind="hourly", device="fc-1",
               meter="PECOS17-M1"):
    """A Scanner 2000 archive record: date, time, 16 float32 fields (big-endian), as edged uploads it."""
    values = [_f32(volume), 0.0, _f32(volume * 1.1), 41.25, _f32(712.4), 78.5, 3600.0, 0.0, 0.0] + [0.0] * 7
    raw = struct.pack(">ff", *_stamp_floats(device_time)) + b"".join(struct.pack(">f", v) for v in values)
    return {"seq": seq, "kind": kind, "device": device, "meter": meter, "contractHour": 9, "deviceTime": device_time,
            "key": f"{kind}@{device_time}", "hash": _fnv1a64(raw), "collectedAt": 1717423215412 + seq,
            "raw": base64.b64encode(raw).decode(),
            "values": {name: _shortest_f32(v) for (name, _), v in zip(SCANNER_FIELDS, values)},
            "units": {name: u for name, u in SCANNER_FIELDS if u}}


def fc() -> str:
    """A device name of its own, for tests on the shared receiver: EFM records are deduplicated by (gateway,
    device, kind, key) across epochs, so two tests must not upload the same device's records."""
    return "fc-" + uuid.uuid4().hex[:12]


def efm_event(seq, device_time="2024-06-03T08:41:07", bitmap=4608, register=7019, as_found=2.067, as_left=2.5,
              device="fc-1"):
    """A standard 20-byte event record: bitmap, register, time, date, as-found, as-left."""
    date, tm = _stamp_floats(device_time)
    raw = struct.pack(">HHffff", bitmap, register, tm, date, as_found, as_left)
    operator = bool(bitmap & 1 << 9)
    limits = [n for i, n in enumerate(["loLo", "lo", "hi", "hiHi", "rateOfChange"]) if bitmap & 1 << (10 + i)]
    return {"seq": seq, "kind": "event", "device": device, "meter": "PECOS17-M1", "contractHour": 9,
            "deviceTime": device_time, "key": f"event@{device_time}/r{register}/b{bitmap}", "hash": _fnv1a64(raw),
            "collectedAt": 1717423216031 + seq, "raw": base64.b64encode(raw).decode(),
            "event": {"register": register, "bitmap": bitmap, "operator": operator,
                      "alarmSet": None if operator else bool(bitmap & 1 << 15), "limits": limits,
                      "asFound": _shortest_f32(as_found), "asLeft": _shortest_f32(as_left)}}


def efm_gap(seq, frm="2024-05-01T10:00:00", to="2024-05-03T07:00:00", periods=44, kind="hourly", device="fc-2"):
    return {"seq": seq, "kind": kind, "device": device, "meter": "PECOS17-M2", "from": frm, "to": to,
            "periods": periods, "notedAt": 1717423215000}


def _efm_batch(ep, records=(), gaps=(), readings_rows=()):
    seqs = [r["seq"] for r in records] + [g["seq"] for g in gaps] + [r["seq"] for r in readings_rows]
    b = header(ep, min(seqs), max(seqs))
    b["schema"] = R.SCHEMA_V2
    if readings_rows:
        b["readings"] = R.encode_readings(readings_rows)
    if records:
        b["efm"] = list(records)
    if gaps:
        b["efmGaps"] = list(gaps)
    return b


def _efm_mutations(ep):
    """Like _mutations, for the EFM members; the base is a valid /2 batch: hourly 1, event 2, gap 3, alarm 4."""
    good = _efm_batch(ep, [efm_hourly(1), efm_event(2, bitmap=0x8000 | 1 << 13)], [efm_gap(3)])
    good["lastSeq"] = 4
    good["alarms"] = [{"seq": 4, "t": 1717423200000, "alarm": "fc-1-comm", "id": "o-1", "kind": "comm-loss",
                       "device": "fc-1", "transition": "raised", "priority": "medium"}]

    def m(path, value=None, delete=False, **top):
        b = copy.deepcopy(good)
        o = b
        for k in path[:-1]:
            o = o[k]
        if delete:
            del o[path[-1]]
        elif path:
            o[path[-1]] = value
        b.update(top)
        return b

    h0, e1, g2 = ["efm", 0], ["efm", 1], ["efmGaps", 0]
    v1 = dict(good, schema=R.SCHEMA_V1)
    other_raw = base64.b64encode(b"\x00" * 72).decode()
    return [
        ("efm in a /1 batch", v1, {}, "schema", "unknown member 'efm'", "/efm"),
        ("efmGaps in a /1 batch", {k: v for k, v in v1.items() if k != "efm"}, {}, "schema",
         "unknown member 'efmGaps'", "/efmGaps"),
        ("efm kind monthly", m(h0 + ["kind"], "monthly"), {}, "schema", "must be one of hourly, daily, event",
         "/efm/0/kind"),
        ("efm without raw", m(h0 + ["raw"], delete=True), {}, "schema", "missing member 'raw'", "/efm/0"),
        ("efm unknown member", m(h0 + ["units2"], {}), {}, "schema", "unknown member 'units2'", "/efm/0/units2"),
        ("efm hourly with an event", m(h0 + ["event"], good["efm"][1]["event"]), {}, "schema",
         "unknown member 'event'", "/efm/0/event"),
        ("efm event with values", m(e1 + ["values"], {"x": 1}), {}, "schema", "unknown member 'values'",
         "/efm/1/values"),
        ("efm event without event", m(e1 + ["event"], delete=True), {}, "schema", "missing member 'event'", "/efm/1"),
        ("efm hourly without values", m(h0 + ["values"], delete=True), {}, "schema", "missing member 'values'",
         "/efm/0"),
        ("efm values empty", m(h0 + ["values"], {}), {}, "schema", "at least one field", "/efm/0/values"),
        ("efm value a string", m(h0 + ["values", "fr1_volume"], "12.5"), {}, "schema", "must be a number or null",
         "/efm/0/values/fr1_volume"),
        ("efm units too long", m(h0 + ["units", "fr1_volume"], "M" * 33), {}, "schema", "at most 32",
         "/efm/0/units/fr1_volume"),
        ("efm units of a field it does not have", m(h0 + ["units", "fr2_volume"], "MCF"), {}, "semantic",
         "values does not have", "/efm/0/units/fr2_volume"),
        ("efm bad meter", m(h0 + ["meter"], "-M1"), {}, "schema", "not a meter id", "/efm/0/meter"),
        ("efm contract hour 24", m(h0 + ["contractHour"], 24), {}, "schema", "must be <= 23", "/efm/0/contractHour"),
        ("efm device time with a zone", m(h0 + ["deviceTime"], "2024-06-03T08:00:00Z"), {}, "schema",
         "not a device time", "/efm/0/deviceTime"),
        ("efm device time with a space", m(h0 + ["deviceTime"], "2024-06-03 08:00:00"), {}, "schema",
         "not a device time", "/efm/0/deviceTime"),
        ("efm device time 30 February", m(h0 + ["deviceTime"], "2024-02-30T08:00:00"), {}, "semantic",
         "not a date of the calendar", "/efm/0/deviceTime"),
        ("efm key too long", m(h0 + ["key"], "k" * 201), {}, "schema", "at most 200", "/efm/0/key"),
        ("efm hash uppercase", m(h0 + ["hash"], good["efm"][0]["hash"].upper()), {}, "schema", "not a hash",
         "/efm/0/hash"),
        ("efm hash of other bytes", m(h0 + ["raw"], other_raw), {}, "semantic", "is not the FNV-1a 64",
         "/efm/0/hash"),
        ("efm raw without padding", m(h0 + ["raw"], good["efm"][1]["raw"].rstrip("=")), {}, "schema",
         "not base64", "/efm/0/raw"),
        ("efm raw url-safe alphabet", m(h0 + ["raw"], "-_" + good["efm"][0]["raw"][2:]), {}, "schema", "not base64",
         "/efm/0/raw"),
        ("efm seq twice", m(e1 + ["seq"], 1), {}, "semantic", "appears twice", ""),
        ("efm seq outside the range", m(g2 + ["seq"], 5), {}, "semantic", "outside firstSeq-lastSeq", ""),
        ("event bitmap above 65535", m(e1 + ["event", "bitmap"], 65536), {}, "schema", "must be <= 65535",
         "/efm/1/event/bitmap"),
        ("event register negative", m(e1 + ["event", "register"], -1), {}, "schema", "must be >= 0",
         "/efm/1/event/register"),
        ("event unknown limit", m(e1 + ["event", "limits"], ["high"]), {}, "schema", "must be one of loLo",
         "/efm/1/event/limits/0"),
        ("event limit twice", m(e1 + ["event", "limits"], ["hiHi", "hiHi"]), {}, "schema", "names a limit twice",
         "/efm/1/event/limits"),
        ("event limits not the bitmap's", m(e1 + ["event", "limits"], ["hi"]), {}, "semantic",
         "names the limits [\"hiHi\"]", "/efm/1/event/limits"),
        ("event operator not the bitmap's", m(e1 + ["event", "operator"], True), {}, "semantic", "bit 9 clear",
         "/efm/1/event/operator"),
        ("event alarmSet not the bitmap's", m(e1 + ["event", "alarmSet"], False), {}, "semantic",
         "alarmSet is true", "/efm/1/event/alarmSet"),
        ("event alarmSet a string", m(e1 + ["event", "alarmSet"], "set"), {}, "schema", "must be true or false",
         "/efm/1/event/alarmSet"),
        ("event without asLeft", m(e1 + ["event", "asLeft"], delete=True), {}, "schema", "missing member 'asLeft'",
         "/efm/1/event"),
        ("efm gap periods 0", m(g2 + ["periods"], 0), {}, "schema", "must be >= 1", "/efmGaps/0/periods"),
        ("efm gap of events", m(g2 + ["kind"], "event"), {}, "schema", "must be one of hourly, daily",
         "/efmGaps/0/kind"),
        ("efm gap from = to", m(g2 + ["to"], "2024-05-01T10:00:00"), {}, "semantic", "is not after from",
         "/efmGaps/0/to"),
        ("efm gap from after to", m(g2 + ["from"], "2024-05-04T10:00:00"), {}, "semantic", "is not after from",
         "/efmGaps/0/to"),
        ("efm gap without notedAt", m(g2 + ["notedAt"], delete=True), {}, "schema", "missing member 'notedAt'",
         "/efmGaps/0"),
        ("efm in a probe", {k: v for k, v in good.items() if k not in ("firstSeq", "lastSeq", "alarms", "efmGaps")}
         | {"probe": True}, {"X-Edged-Probe": "1"}, "probe", "must not carry records", "/efm"),
    ]


def test_fnv1a64_of_the_receiver():
    assert R.fnv1a64(b"") == "cbf29ce484222325"  # the offset basis
    assert R.fnv1a64(b"a") == "af63dc4c8601ec8c"
    assert R.fnv1a64(b"foobar") == "85944171f73967e8"
    raw = bytes(range(256)) * 3
    assert R.fnv1a64(raw) == _fnv1a64(raw)


def test_efm_batch_is_stored_and_shown_by_the_admin_endpoint(rx):
    ep, dev, dev2 = epoch(), fc(), fc()
    records = [efm_hourly(11, device=dev), efm_hourly(12, "2024-06-03T09:00:00", kind="daily", volume=296.8,
                                                      device=dev), efm_event(13, device=dev),
               efm_event(14, "2024-06-03T08:52:10", bitmap=0x8000 | 1 << 12, register=7003, as_found=812.5,
                         as_left=0, device=dev)]
    gap = efm_gap(15, device=dev2)
    b = _efm_batch(ep, records, [gap], readings(1, 10))
    c = rx.conn()
    status, _, resp = post(c, b)
    assert (status, resp) == (200, {"stored": 15, "duplicates": 0})
    assert post(c, b)[:3:2] == (200, {"stored": 0, "duplicates": 15})  # the retry
    assert rx.seqs(ep)["ranges"] == [[1, 15]]
    recs = {r["seq"]: r for r in rx.records(ep)}
    assert recs[11]["kind"] == "efm" and recs[11]["record"] == records[0]
    assert recs[15]["kind"] == "efm-gap" and recs[15]["record"] == gap
    got = rx.admin("GET", f"/efm/records?gateway={GW}&device={dev}")
    assert got["count"] == 4 and [r["epoch"] for r in got["records"]] == [ep] * 4
    assert [(r["kind"], r["deviceTime"]) for r in got["records"]] == [
        ("daily", "2024-06-03T09:00:00"), ("event", "2024-06-03T08:41:07"), ("event", "2024-06-03T08:52:10"),
        ("hourly", "2024-06-03T08:00:00")]
    assert rx.admin("GET", f"/efm/records?device={dev}&kind=event")["count"] == 2
    by_key = {r["key"]: r for r in got["records"]}
    h = by_key["hourly@2024-06-03T08:00:00"]
    want = {k: v for k, v in records[0].items() if k != "seq"}
    assert {k: v for k, v in h.items() if k not in ("gateway", "epoch", "seq")} == want
    assert (h["gateway"], h["epoch"], h["seq"]) == (GW, ep, 11)
    alarm = by_key["event@2024-06-03T08:52:10/r7003/b36864"]
    assert alarm["event"] == {"register": 7003, "bitmap": 36864, "operator": False, "alarmSet": True, "limits": ["hi"],
                              "asFound": 812.5, "asLeft": 0}
    assert "values" not in alarm and "units" not in alarm
    gaps = rx.admin("GET", f"/efm/gaps?gateway={GW}&device={dev2}")["gaps"]
    assert gaps == [{"gateway": GW, "device": dev2, "kind": "hourly", "meter": "PECOS17-M2",
                     "from": "2024-05-01T10:00:00", "to": "2024-05-03T07:00:00", "periods": 44,
                     "notedAt": 1717423215000, "epoch": ep, "seq": 15}]
    s = rx.stats()
    mine = [e for e in s["store"]["byEpoch"] if e["epoch"] == ep][0]
    assert (mine["readings"], mine["efm"], mine["efmGaps"]) == (10, 4, 1)
    assert s["lastBatch"]["schema"] == R.SCHEMA_V2 and s["lastBatch"]["efm"] == 4
    assert rx.admin("GET", f"/efm/counts?device={dev}")["byDevice"] == [
        {"gateway": GW, "device": dev, "kind": k, "records": n, "conflicts": 0, "gaps": 0}
        for k, n in (("daily", 1), ("event", 2), ("hourly", 1))]
    with pytest.raises(urllib.error.HTTPError):
        rx.admin("GET", "/efm/records?epoch=x")


def test_efm_natural_duplicates_under_a_new_seq_and_a_new_epoch(pki, tmp_path):
    r = Receiver(pki, tmp_path / "r.db")
    try:
        c = r.conn()
        ep1, ep2 = epoch(), epoch()
        rec, gap = efm_hourly(1), efm_gap(2)
        assert post(c, _efm_batch(ep1, [rec], [gap]))[:3:2] == (200, {"stored": 2, "duplicates": 0})
        # The same record and gap, collected again, under new seqs of the same epoch...
        again = _efm_batch(ep1, [dict(rec, seq=5, collectedAt=rec["collectedAt"] + 3600_000)], [dict(gap, seq=6)],
                           readings(7, 1))
        assert post(c, again)[:3:2] == (200, {"stored": 1, "duplicates": 2})
        # ... and after the buffer file was recreated (a new epoch, seq from 1 again).
        assert post(c, _efm_batch(ep2, [rec], [gap]))[:3:2] == (200, {"stored": 0, "duplicates": 2})
        counts = r.admin("GET", "/efm/counts")
        assert (counts["records"], counts["conflicts"], counts["gaps"]) == (1, 0, 1)
        assert counts["byDevice"] == [
            {"gateway": GW, "device": "fc-1", "kind": "hourly", "records": 1, "conflicts": 0, "gaps": 0},
            {"gateway": GW, "device": "fc-2", "kind": "hourly", "records": 0, "conflicts": 0, "gaps": 1}]
        kept = r.admin("GET", "/efm/records")["records"]
        assert [(k["epoch"], k["seq"]) for k in kept] == [(ep1, 1)]
        # Every seq received is known by seq, so the retries are plain duplicates.
        assert r.seqs(ep1)["ranges"] == [[1, 2], [5, 7]] and r.seqs(ep2)["ranges"] == [[1, 2]]
        assert post(c, again)[:3:2] == (200, {"stored": 0, "duplicates": 3})
        # A gap of another range of the same device is another gap.
        assert post(c, _efm_batch(ep2, [], [efm_gap(3, "2024-05-03T07:00:00", "2024-05-04T07:00:00", 23)]))[2] == \
            {"stored": 1, "duplicates": 0}
        # Two copies of one record in one batch: the lower seq is kept.
        assert post(c, _efm_batch(ep2, [efm_hourly(10, "2024-06-04T08:00:00"),
                                        efm_hourly(11, "2024-06-04T08:00:00")]))[2] == {"stored": 1, "duplicates": 1}
        st = r.stats()
        assert st["store"]["efm"] == {"records": 2, "conflicts": 0, "gaps": 2} and st["efmConflicts"] == 0
    finally:
        assert r.stop() == 0


def test_efm_record_changed_on_the_device_is_a_conflict_and_the_first_copy_is_kept(pki, tmp_path):
    r = Receiver(pki, tmp_path / "r.db")
    try:
        c = r.conn()
        ep1, ep2 = epoch(), epoch()
        first = efm_hourly(1, volume=12.5)
        assert post(c, _efm_batch(ep1, [first]))[:3:2] == (200, {"stored": 1, "duplicates": 0})
        changed = efm_hourly(2, volume=13.75)  # same key, other bytes: the device's record was altered
        assert changed["key"] == first["key"] and changed["hash"] != first["hash"]
        b = _efm_batch(ep1, [changed], [], readings(3, 2))
        status, _, resp = post(c, b)
        assert (status, resp) == (200, {"stored": 3, "duplicates": 0, "efmConflicts": 1})
        deadline = time.monotonic() + 5  # the log line is on its way through the pipe
        while not any("efmConflicts=1" in line for line in r.lines) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert any("efmConflicts=1" in line for line in r.lines)
        kept = r.admin("GET", f"/efm/records?gateway={GW}&kind=hourly")
        assert kept["count"] == 1 and kept["records"][0]["hash"] == first["hash"]
        assert kept["records"][0]["values"]["fr1_volume"] == 12.5 and kept["records"][0]["raw"] == first["raw"]
        conf = r.admin("GET", f"/efm/conflicts?gateway={GW}")
        assert conf["count"] == 1
        cf = conf["conflicts"][0]
        assert (cf["key"], cf["hash"], cf["storedHash"], cf["raw"], cf["values"]["fr1_volume"], cf["epoch"],
                cf["seq"]) == (first["key"], changed["hash"], first["hash"], changed["raw"], 13.75, ep1, 2)
        assert cf["receivedAt"] > 1717423215412
        # The retry: every seq known with the same content; no new conflict.
        assert post(c, b)[:3:2] == (200, {"stored": 0, "duplicates": 3})
        # The same changed copy again, from a new epoch: a duplicate of the conflict, not a second one.
        assert post(c, _efm_batch(ep2, [dict(changed, seq=1)]))[:3:2] == (200, {"stored": 0, "duplicates": 1})
        # A third version is a second conflict; the first copy stays.
        third = efm_hourly(2, volume=1.5)
        assert post(c, _efm_batch(ep2, [third]))[2] == {"stored": 1, "duplicates": 0, "efmConflicts": 1}
        counts = r.admin("GET", f"/efm/counts?gateway={GW}&device=fc-1")
        assert (counts["records"], counts["conflicts"], counts["gaps"]) == (1, 2, 0)
        assert r.admin("GET", "/efm/records")["records"][0]["hash"] == first["hash"]
        st = r.stats()
        assert st["efmConflicts"] == 2 and st["store"]["efm"]["conflicts"] == 2
        # A reused seq with other content is still 409, EFM or not.
        status, _, resp = post(c, _efm_batch(ep1, [efm_hourly(1, "2024-06-05T08:00:00")]))
        assert status == 409 and resp["seqs"] == [1]
    finally:
        assert r.stop() == 0


def test_efm_version_rules(rx):
    ep = epoch()
    c = rx.conn()
    b = _efm_batch(ep, [efm_hourly(1, device=fc())])
    b1 = dict(b, schema=R.SCHEMA_V1)
    status, _, resp = post(c, b1)
    assert status == 400 and resp["error"] == "schema" and resp["path"] == "/efm"
    assert R.SCHEMA_V2 in resp["message"]
    status, _, resp = post(c, dict(b, schema="wellpulse.edge.batch/3"))
    assert status == 400 and resp["error"] == "unsupported_schema"
    assert resp["supported"] == ["wellpulse.edge.batch/1", "wellpulse.edge.batch/2"]
    # A /2 batch without EFM is accepted (a gateway writes /1 then, but a server takes both).
    assert post(c, dict(batch(ep, 2, 3), schema=R.SCHEMA_V2))[:3:2] == (200, {"stored": 3, "duplicates": 0})
    # Probes in either version.
    for version in (R.SCHEMA_V1, R.SCHEMA_V2):
        probe = {k: v for k, v in header(ep, 1, 1).items() if k not in ("firstSeq", "lastSeq")}
        probe.update(schema=version, probe=True)
        assert post(c, probe, headers={"X-Edged-Probe": "1"})[0] == 204
        assert post(c, dict(probe, efm=[]), headers={"X-Edged-Probe": "1"})[0] == (204 if version == R.SCHEMA_V2
                                                                                     else 400)
    assert rx.seqs(ep)["ranges"] == [[2, 4]]


def test_device_alarm_kind_is_version_2(rx):
    """A flow computer's own alarm (kind device-alarm, no tag) comes in /2; a /1 server does not know it."""
    ep = epoch()
    c = rx.conn()
    b = header(ep, 1, 1)
    b["alarms"] = [{"seq": 1, "t": 1717423200000, "alarm": "fc-1-dp-hi", "id": "o-1", "kind": "device-alarm",
                    "device": "fc-1", "transition": "raised", "priority": "high", "value": 212.5,
                    "reason": "fc-1 register 7101 hi alarm set, value 212.5 at 2024-06-03T08:00:00 device time"}]
    status, _, resp = post(c, b)
    assert status == 400 and resp["error"] == "schema" and resp["path"] == "/alarms/0/kind"
    assert post(c, dict(b, schema=R.SCHEMA_V2))[:3:2] == (200, {"stored": 1, "duplicates": 0})
    with_tag = dict(b, schema=R.SCHEMA_V2, alarms=[dict(b["alarms"][0], seq=2, tag="dp")], firstSeq=2, lastSeq=2)
    status, _, resp = post(c, with_tag)
    assert status == 400 and resp["path"] == "/alarms/0/tag"


def test_efm_values_not_finite_are_null(rx):
    ep, dev = epoch(), fc()
    rec = efm_hourly(1, device=dev)
    raw = bytearray(base64.b64decode(rec["raw"]))
    raw[-4:] = b"\x7f\xc0\x00\x00"  # spare_16: a float32 NaN
    rec.update(raw=base64.b64encode(bytes(raw)).decode(), hash=_fnv1a64(bytes(raw)))
    rec["values"]["spare_16"] = None
    ev = efm_event(2, bitmap=1 << 15 | 1 << 11, as_found=float("inf"), device=dev)
    ev["event"]["asFound"] = None
    assert post(rx.conn(), _efm_batch(ep, [rec, ev]))[:3:2] == (200, {"stored": 2, "duplicates": 0})
    got = {r["kind"]: r for r in rx.admin("GET", f"/efm/records?gateway={GW}&device={dev}")["records"]}
    assert got["hourly"]["values"]["spare_16"] is None and got["event"]["event"]["asFound"] is None
    assert got["event"]["event"]["limits"] == ["lo"] and got["event"]["event"]["alarmSet"] is True


def test_efm_examples_of_the_document(rx):
    ex = doc_examples()
    assert {"efm-batch", "efm-event"} <= set(ex)
    eb, ev = ex["efm-batch"], ex["efm-event"]
    assert eb["schema"] == R.SCHEMA_V2
    assert ev == efm_event(ev["seq"]) | {"collectedAt": ev["collectedAt"]}
    ep, dev = epoch(), fc()  # a fresh epoch and device, so that the test can run against a used store
    eb["epoch"] = ep
    for r in eb["efm"] + eb["efmGaps"] + [ev]:
        r["device"] = dev
    c = rx.conn()
    assert post(c, eb)[:3:2] == (200, {"stored": 2, "duplicates": 0})
    assert post(c, eb)[:3:2] == (200, {"stored": 0, "duplicates": 2})
    h = eb["efm"][0]
    assert h["hash"] == _fnv1a64(base64.b64decode(h["raw"]))
    # The raw bytes are a Scanner 2000 record: MMDDYY, HHMMSS, then the 16 values as float32.
    floats = struct.unpack(">18f", base64.b64decode(h["raw"]))
    assert _stamp_floats(h["deviceTime"]) == floats[:2]
    assert [_shortest_f32(f) for f in floats[2:]] == list(h["values"].values())
    assert list(h) == ["seq", "kind", "device", "meter", "contractHour", "deviceTime", "key", "hash", "collectedAt",
                       "raw", "values", "units"], "§4.5 gives the member order"
    assert post(c, _efm_batch(ep, [ev]))[:3:2] == (200, {"stored": 1, "duplicates": 0})
    # §6: the same records collected again under new seqs are duplicates; a changed copy is an EFM conflict.
    assert post(c, _efm_batch(ep, [dict(h, seq=2401)]))[2] == {"stored": 0, "duplicates": 1}
    changed = efm_hourly(2402, h["deviceTime"], volume=12.5, device=dev)
    assert changed["key"] == h["key"] and changed["hash"] != h["hash"]
    assert post(c, _efm_batch(ep, [changed]))[2] == {"stored": 1, "duplicates": 0, "efmConflicts": 1}


def test_uncompressed_and_chunked_bodies_are_accepted(rx):
    ep = epoch()
    c = rx.conn()
    assert post(c, batch(ep, 1, 5), gz=False)[:3:2] == (200, {"stored": 5, "duplicates": 0})
    b = batch(ep, 6, 5)
    data = gzip.compress(json.dumps(b).encode())
    c.request("POST", PATH, body=iter([data[:10], data[10:]]), encode_chunked=True,
              headers={"Content-Type": "application/json", "Content-Encoding": "gzip",
                       "Authorization": "Bearer tok-gw1", "Transfer-Encoding": "chunked", "Idempotency-Key": ikey(b)})
    r = c.getresponse()
    assert (r.status, json.loads(r.read())) == (200, {"stored": 5, "duplicates": 0})


def test_wrong_path_and_method(rx):
    c = rx.conn()
    c.request("POST", "/api/v1/edge/batch", body=b"{}", headers={"Authorization": "Bearer tok-gw1"})
    r = c.getresponse()
    assert r.status == 404 and json.loads(r.read())["error"] == "not_found"
    c.request("GET", PATH)
    r = c.getresponse()
    assert r.status == 405 and r.getheader("Allow") == "POST"
    r.read()


# ----------------------------------------------------------------------------------------------------------
# Size limits
# ----------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small(pki, tmp_path_factory):
    r = Receiver(pki, tmp_path_factory.mktemp("small") / "r.db", "--max-body", "4096", "--max-inflated", "64KiB",
                 "--max-inflight", "1", "--tenant", "acmeoil")
    yield r
    assert r.stop() == 0


def _noisy_readings(first, n):
    rnd = random.Random(first)
    rows = readings(first, n)
    for r in rows:
        if r["v"] is not None:
            r["v"] = rnd.random() * 1000  # 17 random digits: gzip cannot do much
    return rows


def _batch_of(ep, rows):
    b = header(ep, rows[0]["seq"], rows[-1]["seq"])
    b["readings"] = R.encode_readings(rows)
    return b


def test_too_large_body_is_413_and_the_halves_go_through(small):
    ep = epoch()
    rows = _noisy_readings(1, 1000)
    status, _, resp = post(small.conn(), _batch_of(ep, rows))
    assert status == 413 and resp["error"] == "too_large" and resp["limit"] == 4096 and resp["limitOf"] == "body"
    assert "4096" in resp["message"]
    assert small.seqs(ep)["count"] == 0
    sent = []

    def send(part):  # what the gateway does on 413: halves by seq, each a complete batch
        status, _, resp = post(small.conn(), _batch_of(ep, part))
        if status == 413:
            assert len(part) > 1
            send(part[:len(part) // 2])
            send(part[len(part) // 2:])
        else:
            assert (status, resp) == (200, {"stored": len(part), "duplicates": 0})
            sent.append(len(part))
    send(rows)
    assert len(sent) >= 2 and sum(sent) == 1000
    assert small.seqs(ep)["ranges"] == [[1, 1000]]


def test_inflated_limit_is_413(small):
    b = batch(epoch(), 1, 3)
    raw = json.dumps(b).encode()
    raw = raw[:-1] + b" " * 100_000 + b"}"  # 100 kB of whitespace gzips to almost nothing
    data = gzip.compress(raw)
    assert len(data) < 4096
    status, _, resp = post(small.conn(), raw=data, headers={"Content-Encoding": "gzip", "Idempotency-Key": ikey(b)})
    assert status == 413 and resp["limitOf"] == "inflated" and resp["limit"] == 65536


def test_tenant_of_the_endpoint_and_load_shedding(small):
    b = batch(epoch(), 1, 5)
    b["gateway"]["tenant"] = "permianco"
    status, _, resp = post(small.conn(), b)
    assert status == 403 and "permianco" in resp["message"]
    # --max-inflight 1: a second batch while one is being processed is 503 with Retry-After.
    small.fault(mode="delay", ms=600, count=1)
    slow = threading.Thread(target=lambda: post(small.conn(), batch(epoch(), 1, 5)))
    slow.start()
    time.sleep(0.25)
    status, r, resp = post(small.conn(), batch(epoch(), 1, 5))
    slow.join()
    assert status == 503 and resp["error"] == "overloaded" and r.getheader("Retry-After") == "1"


def _raw_tls(r):
    s = socket.create_connection(("127.0.0.1", r.port), timeout=10)
    return r.context().wrap_socket(s, server_hostname="127.0.0.1")


def _read_head(s) -> bytes:
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            break
        buf += chunk
    return buf


def _expect_head(length, token="tok-gw1") -> bytes:
    return (f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Encoding: gzip\r\nAuthorization: Bearer {token}\r\nContent-Length: {length}\r\n"
            f"Expect: 100-continue\r\n\r\n").encode()


def test_expect_100_continue_refuses_before_the_body_is_sent(small):
    ep = epoch()
    # Too large: 413 at once, no 100 Continue.
    s = _raw_tls(small)
    s.sendall(_expect_head(50_000))
    assert _read_head(s).startswith(b"HTTP/1.1 413 ")
    s.close()
    # A bad token: 401 at once.
    data = gzip.compress(json.dumps(batch(ep, 1, 5)).encode())
    s = _raw_tls(small)
    s.sendall(_expect_head(len(data), token="nope"))
    assert _read_head(s).startswith(b"HTTP/1.1 401 ")
    s.close()
    # Acceptable: 100 Continue, then the body, then the answer.
    s = _raw_tls(small)
    s.sendall(_expect_head(len(data)))
    assert _read_head(s).startswith(b"HTTP/1.1 100 Continue")
    s.sendall(data)
    resp = _read_head(s)
    assert resp.startswith(b"HTTP/1.1 200 "), resp
    s.close()
    assert small.seqs(ep)["count"] == 5


# ----------------------------------------------------------------------------------------------------------
# Probe
# ----------------------------------------------------------------------------------------------------------

def test_probe(rx):
    before = rx.stats()
    c = rx.conn()
    c.request("POST", PATH, headers={"Authorization": "Bearer tok-gw1", "X-Edged-Probe": "1", "Content-Length": "0"})
    r = c.getresponse()
    assert r.status == 204 and r.read() == b"" and r.getheader("Date")
    c.request("POST", PATH, headers={"Authorization": "Bearer bad", "X-Edged-Probe": "1", "Content-Length": "0"})
    r = c.getresponse()
    assert r.status == 401
    r.read()
    ep = epoch()
    probe = header(ep, 1, 1)
    del probe["firstSeq"], probe["lastSeq"]
    probe["probe"] = True
    assert post(c, probe, headers={"X-Edged-Probe": "1"})[0] == 204
    assert post(c, probe, token="tok-other", headers={"X-Edged-Probe": "1"})[0] == 403
    with_records = dict(probe, readings=batch(ep)["readings"])
    status, _, resp = post(c, with_records, headers={"X-Edged-Probe": "1"})
    assert status == 400 and resp["error"] == "probe"
    after = rx.stats()
    assert after["probes"] - before["probes"] == 2
    assert after["store"]["records"] == before["store"]["records"]
    assert rx.seqs(ep)["count"] == 0


# ----------------------------------------------------------------------------------------------------------
# TLS: mTLS, pin
# ----------------------------------------------------------------------------------------------------------

def test_mtls_required_when_client_ca_is_given(pki, tmp_path):
    r = Receiver(pki, tmp_path / "r.db", "--client-ca", pki.ca)
    try:
        ep = epoch()
        for kw in ({}, {"cert": pki.other_client_cert, "key": pki.other_client_key}):  # none; another CA's
            with pytest.raises((OSError, http.client.HTTPException)):
                post(r.conn(**kw), batch(ep))
        assert post(r.conn(cert=pki.client_cert, key=pki.client_key), batch(ep))[:3:2] == \
               (200, {"stored": 30, "duplicates": 0})
        assert r.stats()["tlsHandshakeFailures"] >= 2
        assert any("cn=pecos-17-gw1" in line and "stored=30" in line for line in r.lines)
    finally:
        assert r.stop() == 0


def test_server_key_pin_printed_by_make_test_ca_matches(rx, pki):
    import base64
    import hashlib
    assert pki.pin.startswith("sha256//") and pki.pin_file.read_text().strip() == pki.pin
    assert pki.other_pin != pki.pin
    der = subprocess.run(["openssl", "pkey", "-in", str(pki.key), "-pubout", "-outform", "DER"], capture_output=True,
                         check=True).stdout
    assert pki.pin == "sha256//" + base64.b64encode(hashlib.sha256(der).digest()).decode()
    # The key the receiver actually serves is the pinned one (checked through its certificate).
    s = _raw_tls(rx)
    cert_der = s.getpeercert(binary_form=True)
    s.close()
    pub = subprocess.run(["openssl", "x509", "-inform", "DER", "-pubkey", "-noout"], input=cert_der,
                         capture_output=True, check=True).stdout
    spki = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub, capture_output=True,
                          check=True).stdout
    assert "sha256//" + base64.b64encode(hashlib.sha256(spki).digest()).decode() == pki.pin
    # And a client trusting only the other CA refuses the server.
    with pytest.raises(ssl.SSLCertVerificationError):
        post(rx.conn(ca=pki.other_ca), batch(epoch()))


# ----------------------------------------------------------------------------------------------------------
# Fault injection
# ----------------------------------------------------------------------------------------------------------

def test_response_dropped_after_store_then_retry_is_all_duplicates(rx):
    ep = epoch()
    b = batch(ep, 1, 40)
    assert rx.fault(mode="drop-response-after-store", count=1)["remaining"] == 1
    with pytest.raises((ConnectionError, http.client.HTTPException, ssl.SSLError)):
        post(rx.conn(), b)
    assert rx.seqs(ep)["count"] == 40  # stored, although the client never heard so
    status, _, body = post(rx.conn(), b)  # the gateway's retry
    assert (status, body) == (200, {"stored": 0, "duplicates": 40})
    assert rx.seqs(ep)["ranges"] == [[1, 40]]
    assert rx.admin("GET", "/faults")["mode"] == "none"


def test_dropped_before_store_then_retry_stores(rx):
    ep = epoch()
    b = batch(ep, 1, 10)
    rx.fault(mode="drop-before-store", count=1)
    with pytest.raises((ConnectionError, http.client.HTTPException, ssl.SSLError)):
        post(rx.conn(), b)
    assert rx.seqs(ep)["count"] == 0
    assert post(rx.conn(), b)[2] == {"stored": 10, "duplicates": 0}


def test_status_fault_429_with_retry_after(rx):
    ep = epoch()
    b = batch(ep, 1, 10)
    rx.fault(mode="status", code=429, retryAfter=5, count=1)
    c = rx.conn()
    status, r, body = post(c, b)
    assert status == 429 and r.getheader("Retry-After") == "5" and body["error"] == "injected"
    assert rx.seqs(ep)["count"] == 0
    assert post(c, b)[2] == {"stored": 10, "duplicates": 0}  # count 1: back to normal, same connection
    rx.fault(mode="status", code=503, retryAfterDateIn=30, count=2)
    for _ in range(2):
        status, r, _ = post(c, b)
        when = email.utils.parsedate_to_datetime(r.getheader("Retry-After")).timestamp()
        assert status == 503 and 25 <= when - time.time() <= 31
    assert post(c, b)[0] == 200


def test_refuse_and_delay_faults(rx):
    rx.fault(mode="refuse", count=1)
    with pytest.raises((OSError, http.client.HTTPException)):
        post(rx.conn(), batch(epoch()))
    rx.fault(mode="delay", ms=400, count=1)
    t0 = time.monotonic()
    assert post(rx.conn(), batch(epoch()))[0] == 200
    assert time.monotonic() - t0 >= 0.4
    with pytest.raises(urllib.error.HTTPError):
        rx.fault(mode="explode")


# ----------------------------------------------------------------------------------------------------------
# Durability and lifecycle
# ----------------------------------------------------------------------------------------------------------

def test_records_survive_kill_9_after_2xx(pki, tmp_path):
    store = tmp_path / "r.db"
    r = Receiver(pki, store)
    ep = epoch()
    b = batch(ep, 1, 500)
    assert post(r.conn(), b)[2] == {"stored": 500, "duplicates": 0}
    r.stop(signal.SIGKILL)  # no chance to checkpoint or close
    assert r.proc.returncode == -signal.SIGKILL
    r.start()
    try:
        assert r.seqs(ep) == {"gateway": GW, "epoch": ep, "count": 500, "ranges": [[1, 500]]}
        assert post(r.conn(), b)[2] == {"stored": 0, "duplicates": 500}
        store_stats = r.stats()["store"]
        assert store_stats["records"] == 500 and store_stats["byEpoch"][0]["maxSeq"] == 500
    finally:
        assert r.stop() == 0


def test_sigterm_stops_cleanly(pki, tmp_path):
    r = Receiver(pki, tmp_path / "r.db")
    c = r.conn()
    assert post(c, batch(epoch()))[0] == 200  # an idle keep-alive connection stays open
    t0 = time.monotonic()
    assert r.stop(signal.SIGTERM) == 0
    assert time.monotonic() - t0 < 5
    assert r.lines[-1].endswith("receiver: stopped")


def test_admin_must_be_loopback(pki, tmp_path):
    p = subprocess.run([sys.executable, str(HERE / "receiver.py"), "--listen", "127.0.0.1:0", "--admin", "0.0.0.0:0",
                        "--cert", str(pki.cert), "--key", str(pki.key), "--tokens", str(pki.tokens),
                        "--store", str(tmp_path / "r.db")], capture_output=True, text=True, timeout=20)
    assert p.returncode == 2 and "loopback" in p.stderr


# ----------------------------------------------------------------------------------------------------------
# The JSON Schema and the receiver agree
# ----------------------------------------------------------------------------------------------------------

@pytest.mark.skipif(jsonschema is None, reason="jsonschema is not installed (apt-get install python3-jsonschema)")
def test_schema_file_and_receiver_agree():
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    v = jsonschema.Draft202012Validator(schema)
    ex = doc_examples()
    valid = [ex["readings-batch"], ex["alarm-batch"], ex["probe-body"], batch(epoch(), 1, 50)]
    for a in [ex["alarm"],
              {"seq": 7, "t": 0, "alarm": "rpc-1-comm", "id": "x", "kind": "comm-loss", "device": "rpc-1",
               "transition": "cleared", "priority": "medium", "value": None, "limit": None},
              {"seq": 7, "t": 5, "alarm": "rpc-1-fillage", "id": "y", "kind": "limit", "device": "rpc-1",
               "tag": "pump_fillage", "level": "ll", "transition": "shelved", "priority": "medium",
               "until": 99, "by": "edgectl:jdoe", "reason": ""},
              {"seq": 7, "t": 5, "alarm": "rpc-1-state", "id": "z", "kind": "state", "device": "rpc-1",
               "tag": "well_state", "transition": "acknowledged", "priority": "high", "value": "malfunction"}]:
        b = header("abcdefgh", a["seq"], a["seq"])
        b["alarms"] = [a]
        valid.append(b)
    text = header("abcdefgh", 1, 2)
    text["readings"] = [{"device": "rpc-1", "tag": "serial", "seq": [1, 1], "t": [5, -3], "v": ["A-17", 2.5e-3],
                         "q": ["good", "good"]}]
    valid.append(text)
    flagged = batch(epoch(), 1, 50)
    flagged["clockUnsynchronized"] = [[1, 1], [2, 9], [11, 50]]
    valid += [flagged, dict(flagged, clockUnsynchronized=[]), dict(ex["probe-body"], clockUnsynchronized=[])]
    # Version 2: the examples, every kind, nulls for floats that are not finite, a probe, a /2 batch without EFM.
    ev = ex["efm-event"]
    nan = efm_hourly(3)
    nan["values"]["spare_16"] = None
    del nan["units"]
    alarm_ev = efm_event(4, bitmap=0x8000 | 0x7C00, as_found=float("nan"))
    alarm_ev["event"]["asFound"] = None
    valid += [ex["efm-batch"], _efm_batch("abcdefgh", [ev]), _efm_batch("abcdefgh", [], [efm_gap(9, periods=1)]),
              _efm_batch("abcdefgh", [efm_hourly(1, kind="daily"), nan, alarm_ev, efm_event(5, bitmap=0)],
                         [efm_gap(6, kind="daily")], readings(7, 3)),
              dict(ex["probe-body"], schema=R.SCHEMA_V2), dict(ex["probe-body"], schema=R.SCHEMA_V2, efm=[]),
              dict(batch(epoch(), 1, 5), schema=R.SCHEMA_V2)]
    for doc in valid:
        assert not list(v.iter_errors(doc)), doc
        R.parse_batch(doc)

    # Invalid for both (schema class) and invalid for the receiver only (rules beyond the schema).
    for name, body, headers, code, fragment, path in _mutations("abcdefgh"):
        if isinstance(body, bytes) or headers.get("Content-Type") or headers.get("Content-Encoding") \
                or headers.get("X-Edged-Probe") or code in ("idempotency_key", "probe"):
            continue
        with pytest.raises(R.Reject):
            R.parse_batch(body)
        schema_rejects = bool(list(v.iter_errors(body)))
        if code == "semantic":
            assert not schema_rejects, f"{name}: the schema catches it, so the doc's list is wrong"
        else:
            assert schema_rejects, f"{name}: the receiver rejects it but the schema does not"
    bad_alarms = [
        {"kind": "limit"},                                   # limit without level
        {"kind": "comm-loss", "tag": "x"},                   # comm-loss with a tag
        {"until": 5},                                        # until on a non-shelved transition
        {"transition": "escalated"},
        {"priority": "urgent"},
    ]
    base = {"seq": 7, "t": 5, "alarm": "a", "id": "i", "kind": "state", "device": "d", "tag": "t",
            "transition": "raised", "priority": "low"}
    for patch in bad_alarms:
        b = header("abcdefgh", 7, 7)
        b["alarms"] = [{**base, **patch}]
        assert list(v.iter_errors(b)), patch
        with pytest.raises(R.Reject):
            R.parse_batch(b)


# ----------------------------------------------------------------------------------------------------------
# Bytes on the wire: the example pad's backlog, encoded as the protocol says
# ----------------------------------------------------------------------------------------------------------

def _f32(x: float) -> float:
    return struct.unpack("f", struct.pack("f", x))[0]


def _shortest_f32(x: float):
    f = _f32(x)
    for p in range(1, 10):
        s = "%.*g" % (p, f)
        if _f32(float(s)) == f:
            return float(s)
    return f


def example_pad_backlog(hours: float, seed=17):
    """Every poll of every tag of config/edged.example.yaml (no report-by-exception: the worst case), values
    walking slowly at the tag's resolution, 0-40 ms of transaction jitter; values written as §4.1 says."""
    rnd = random.Random(seed)
    rpc = [("well_state", None, 0, 1, 0), ("motor_running", None, 0, 1, 0), ("strokes_per_minute", "spm", 1, 8.5, 1),
           ("pump_fillage", "%", 1, 80, 3), ("runtime_today", "%", 1, 50, 1), ("peak_load", "lb", 0, 18000, 20),
           ("min_load", "lb", 0, 6000, 20), ("motor_current", "A", 1, 30, 2), ("tubing_pressure", "psi", 0, 300, 1),
           ("casing_pressure", "psi", 0, 80, 1), ("fault_word", None, 0, 0, 0), ("fault_overload", None, 0, 0, 0),
           ("fault_rod_part", None, 0, 0, 0), ("stroke_count_today", "strokes", 0, 5000, 1)]
    devices = [(f"rpc-{i}", 10000, rpc) for i in range(1, 5)]
    devices.append(("efm-1", 15000, [(t, u, "f", m, s) for t, u, m, s in [
        ("flow_rate", "MCF/d", 450, 0.3), ("today_volume", "MCF", 200, 0.05), ("yesterday_volume", "MCF", 430, 0),
        ("grand_total", "MCF", 123456, 0.05), ("differential_pressure", "inH2O", 50, 0.2),
        ("static_pressure", "psia", 700, 0.5), ("flowing_temperature", "degF", 80, 0.05),
        ("battery_voltage", "V", 12.8, 0.01)]]))
    devices.append(("mvt-1", 5000, [("differential_pressure", "inH2O", "f", 50, 0.2),
                                    ("static_pressure", "psi", "f", 700, 0.5),
                                    ("process_temperature", "degF", "f", 80, 0.05), ("framing_errors", None, 0, 3, 0),
                                    ("crc_errors", None, 0, 1, 0), ("good_messages", None, 0, 40000, 1)]))
    devices.append(("esp-1", 5000, [("intake_pressure", "psi", 1, 300, 3), ("discharge_pressure", "psi", 1, 1800, 5),
                                    ("intake_temperature", "degC", 2, 90, 3), ("motor_temperature", "degC", 2, 110, 3),
                                    ("vibration_x", "g", 3, 0.3, 5), ("vibration_y", "g", 3, 0.3, 5),
                                    ("vibration_z", "g", 3, 0.3, 5), ("vibration_peak", "g", 3, 0.5, 5),
                                    ("gauge_current", "mA", 2, 12, 1)]))
    tanks = []
    for k in range(1, 5):
        tanks += [(f"tank{k}_total_height", "in", 1, 120, 1), (f"tank{k}_gross_volume", "gal", 0, 8000, 3),
                  (f"tank{k}_net_volume", "gal", 0, 7900, 3), (f"tank{k}_product_temperature", "degF", 1, 75, 1),
                  (f"tank{k}_water_height", "in", 1, 10, 0), (f"tank{k}_ullage", "gal", 0, 4000, 3)]
    devices.append(("tanks", 30000, tanks))
    devices.append(("water-tank-level", 30000, [("level", "in", 3, 100, 2)]))
    t0 = 1717423200000
    state = {}
    events = []
    for dev, poll, tags in devices:
        offset = rnd.randint(0, poll)
        for cycle in range(int(hours * 3600 * 1000 / poll)):
            tx = t0 + offset + cycle * poll + rnd.randint(0, 40)
            for tag, units, dec, mid, step in tags:
                cur = state.get((dev, tag), mid)
                if step and rnd.random() < 0.5:
                    cur += rnd.choice((-1, 1)) * step * (1 if dec == "f" else 10 ** -dec)
                state[(dev, tag)] = cur
                v = _shortest_f32(cur) if dec == "f" else (round(cur, dec) if dec else int(round(cur)))
                events.append((tx, dev, tag, units, v))
    events.sort(key=lambda e: e[0])
    return [{"seq": i + 1, "t": t, "device": d, "tag": tag, "units": u, "v": v, "q": "good"}
            for i, (t, d, tag, u, v) in enumerate(events)]


def test_example_pad_backlog_costs_at_most_4_bytes_per_reading_on_the_wire(rx):
    rows = example_pad_backlog(hours=2)
    ep = epoch()
    per_batch = 5000
    before = rx.stats()
    c = rx.conn()
    for i in range(0, len(rows), per_batch):
        chunk = rows[i:i + per_batch]
        b = header(ep, chunk[0]["seq"], chunk[-1]["seq"])
        b["readings"] = R.encode_readings(chunk)
        assert post(c, b)[2] == {"stored": len(chunk), "duplicates": 0}
    after = rx.stats()
    body = after["bodyBytes"] - before["bodyBytes"]
    headers = after["headerBytes"] - before["headerBytes"]
    per_reading = (body + headers) / len(rows)
    print(f"\nexample pad, {len(rows)} readings, {per_batch} per batch: {body / len(rows):.2f} B body + "
          f"{headers / len(rows):.3f} B headers per reading")
    assert per_reading <= 4.0
    assert rx.seqs(ep)["ranges"] == [[1, len(rows)]]
