#!/usr/bin/env python3
"""Reference receiver for the edged sync protocol: the server side of docs/sync-protocol.md.

Python 3.11 standard library only. One command starts it:

    python3 tools/receiver/receiver.py --listen 127.0.0.1:18443 --cert server.pem --key server.key \\
        --tokens tokens.txt --store receiver.db [--client-ca ca.pem] [--admin 127.0.0.1:18444]

What it does for every POST to the batch path, in this order (each step is a rule of the protocol):

 1. path and method (404, 405), then injected faults (admin endpoint) and load shedding (503 + Retry-After);
 2. the bearer token (401, with WWW-Authenticate); `X-Edged-Probe: 1` without a body ends here with 204;
 3. Content-Type, Content-Encoding and the body size on the wire (400, 411, 413), before the body is read
    (so an `Expect: 100-continue` request is refused before the gateway sends the body);
 4. gunzip with a limit on the inflated size (400, 413), JSON (400), the batch rules (400): the JSON Schema
    in docs/sync-batch.schema.json plus the rules a schema cannot state (delta decoding, seq ranges, ...);
 5. the token may send for this gateway, the tenant matches (403); the Idempotency-Key names this batch (400);
 6. one SQLite transaction: every record is new (inserted), already known with the same content (a duplicate),
    or already known with different content (409, nothing stored); an EFM record new by seq is then looked up by
    its natural identity (gateway, device, kind, key): a known hash is a duplicate, another hash an EFM conflict
    (kept aside, counted as stored; an EFM gap likewise by gateway, device, kind, from, to); COMMIT with
    synchronous=FULL;
 7. only then 200 {"stored": n, "duplicates": m[, "efmConflicts": k]}.

Faults for tests are switched at runtime on a plain-HTTP loopback admin port; see `AdminHandler` below.
"""

from __future__ import annotations

import argparse
import base64
import bisect
import datetime
import email.utils
import hmac
import http.server
import ipaddress
import json
import math
import os
import re
import signal
import socket
import socketserver
import sqlite3
import ssl
import sys
import threading
import time
import urllib.parse
import zlib

SCHEMA_V1 = "wellpulse.edge.batch/1"
SCHEMA_V2 = "wellpulse.edge.batch/2"    # /1 plus EFM records and EFM gaps (efm, efmGaps)
SCHEMA_ID = SCHEMA_V1                  # what a gateway writes for a batch without EFM
SUPPORTED_SCHEMAS = (SCHEMA_V1, SCHEMA_V2)
MAX_SAFE = 2**53 - 1  # the largest integer a JavaScript number holds exactly

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z")       # gateway ids, devices, alarms
TAG_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")             # tag names
TENANT_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")  # DNS label, as in <tenant>.wellpulse.io
EPOCH_RE = re.compile(r"[A-Za-z0-9_-]{8,64}\Z")
TOKEN_RE = re.compile(r"[A-Za-z0-9._~+/-]+=*\Z")                  # RFC 6750 b64token

QUALITY_CAUSES = ("timeout", "framing", "link", "decode", "offline")
QUALITY_RE = re.compile(r"(?:good|timeout|framing|link|decode|offline|exception-[0-9A-F]{2})\Z")
ALARM_KINDS = ("limit", "rate", "state", "stale", "comm-loss", "system", "device-alarm")
# A flow computer's own alarm from its event log: version 2 only (a version-1 server does not know the kind).
V2_ALARM_KINDS = ("device-alarm",)
# Alarms that watch no tag: a device (comm-loss) or the gateway itself (system: buffer, uplink).
TAGLESS_KINDS = ("comm-loss", "system", "device-alarm")
ALARM_LEVELS = ("hh", "h", "l", "ll")
TRANSITIONS = ("raised", "cleared", "acknowledged", "reset", "shelved", "unshelved", "suppressed", "unsuppressed",
               "out-of-service", "in-service")
PRIORITIES = ("critical", "high", "medium", "low")
GAP_REASONS = ("storage-budget", "retention", "data-budget", "disk-full", "io-error")

# EFM (schema /2): a flow computer's archive and event records, and what its ring lost.
METER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
FIELD_RE = TAG_RE                                                 # archive field names: tag-name rules
DEVICE_TIME_RE = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"   # device-local, no zone
                            r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]\Z")
HASH_RE = re.compile(r"[0-9a-f]{16}\Z")
BASE64_RE = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?\Z")
EFM_KINDS = ("hourly", "daily", "event")
EFM_GAP_KINDS = ("hourly", "daily")
EFM_LIMITS = ("loLo", "lo", "hi", "hiHi", "rateOfChange")      # event bitmap bits 10..14, in this order
EFM_MAX_RAW = 4096                                                # base64 characters of one record's bytes
EFM_KEY_MAX = 200


def fnv1a64(data: bytes) -> str:
    """64-bit FNV-1a (offset basis 0xcbf29ce484222325, prime 0x100000001b3) as 16 lowercase hex digits."""
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def event_bits(bitmap: int) -> tuple[bool, bool | None, list[str]]:
    """(operator, alarmSet, limits) as an event record's bitmap states them: bit 9 an operator's change, bit 15
    an alarm set (true) or cleared (false; null for operator events), bits 10..14 the limits."""
    operator = bool(bitmap & (1 << 9))
    alarm_set = None if operator else bool(bitmap & (1 << 15))
    return operator, alarm_set, [name for i, name in enumerate(EFM_LIMITS) if bitmap & (1 << (10 + i))]


# ----------------------------------------------------------------------------------------------------------
# Batch rules
# ----------------------------------------------------------------------------------------------------------

class Reject(Exception):
    """A request the receiver answers with an error status and a JSON body {error, message[, path]}."""

    def __init__(self, status: int, code: str, message: str, path: str | None = None,
                 headers: dict[str, str] | None = None, extra: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.path = status, code, message, path
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict:
        b = {"error": self.code, "message": self.message}
        if self.path is not None:
            b["path"] = self.path
        b.update(self.extra)
        return b


def invalid(path: str, message: str, code: str = "schema") -> Reject:
    return Reject(400, code, f"{path or '/'}: {message}", path)


def _int(x, path, lo=None, hi=None) -> int:
    # JSON Schema (and JavaScript) see 5.0 as the integer 5; booleans are not integers.
    if type(x) is float and x.is_integer():
        x = int(x)
    if type(x) is not int:
        raise invalid(path, f"must be an integer, not {_kind(x)}")
    if lo is not None and x < lo:
        raise invalid(path, f"must be >= {lo}, got {x}")
    if hi is not None and x > hi:
        raise invalid(path, f"must be <= {hi}, got {x}")
    return x


def _str(x, path, pattern=None, maxlen=None, what=None, minlen=1) -> str:
    if type(x) is not str:
        raise invalid(path, f"must be a string, not {_kind(x)}")
    if len(x) < minlen:
        raise invalid(path, "must not be empty")
    if maxlen is not None and len(x) > maxlen:
        raise invalid(path, f"must be at most {maxlen} characters")
    if pattern is not None and not pattern.match(x):
        raise invalid(path, f"'{_clip(x)}' is not {what}")
    return x


def _enum(x, path, choices) -> str:
    if type(x) is not str or x not in choices:
        raise invalid(path, f"must be one of {', '.join(choices)}; got {_clip(json.dumps(x))}")
    return x


def _bool(x, path) -> bool:
    if type(x) is not bool:
        raise invalid(path, f"must be true or false, not {_kind(x)}")
    return x


def _number(x, path, allow_text=False, allow_null=False):
    if x is None and allow_null:
        return None
    if type(x) is str and allow_text:
        if len(x) > 1024:
            raise invalid(path, "text values are at most 1024 characters")
        return x
    if type(x) is int:
        return x if -MAX_SAFE <= x <= MAX_SAFE else float(x)
    if type(x) is float:
        if not math.isfinite(x):
            raise invalid(path, "must be a finite number")
        return x
    allowed = ["a number"] + (["a string"] if allow_text else []) + (["null"] if allow_null else [])
    allowed = ", ".join(allowed[:-1]) + " or " + allowed[-1] if len(allowed) > 1 else allowed[0]
    raise invalid(path, f"must be {allowed}, not {_kind(x)}")


def _object(x, path, required, optional=()) -> dict:
    if type(x) is not dict:
        raise invalid(path, f"must be an object, not {_kind(x)}")
    for k in required:
        if k not in x:
            raise invalid(path, f"missing member '{k}'")
    allowed = set(required) | set(optional)
    for k in x:
        if k not in allowed:
            raise invalid(f"{path}/{_esc(k)}", f"unknown member '{_clip(k)}' (this schema version allows {', '.join(sorted(allowed))})")
    return x


def _array(x, path, min_items=0) -> list:
    if type(x) is not list:
        raise invalid(path, f"must be an array, not {_kind(x)}")
    if len(x) < min_items:
        raise invalid(path, f"must have at least {min_items} item{'s' if min_items != 1 else ''}")
    return x


def _kind(x) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null",
            int: "an integer", float: "a number"}.get(type(x), type(x).__name__)


def _clip(s: str, n: int = 60) -> str:
    return s if len(s) <= n else s[:n] + "..."


def _esc(k: str) -> str:  # JSON Pointer escaping
    return str(k).replace("~", "~0").replace("/", "~1")


class Batch:
    """A validated batch: header fields plus the records expanded to one tuple each.

    records: (seq, kind, t, series_key, value, quality, body) with kind 'reading' | 'alarm' | 'gap' | 'efm' |
    'efm-gap'; series_key is (device, tag, units) for readings; body is the canonical JSON of any other record
    (EFM records with their raw bytes in base64, as received). t: a reading's or alarm's time, a gap's 'to',
    an EFM record's collectedAt, an EFM gap's notedAt.
    efm_natural: seq -> the EFM record or gap as parsed (for the natural-key deduplication of §6).
    unsync_lo, unsync_hi: the clockUnsynchronized ranges as two sorted lists of bounds (empty when absent).
    """

    __slots__ = ("schema", "gateway", "tenant", "site", "software", "epoch", "probe", "first_seq", "last_seq",
                 "sent_at", "clock_synchronized", "records", "readings", "alarms", "gaps", "efm", "efm_gaps",
                 "efm_natural", "unsync_lo", "unsync_hi")

    def idempotency_key(self) -> str:
        return f"{self.gateway}:{self.epoch}:{self.first_seq}-{self.last_seq}"

    def time_unsynchronized(self, seq: int, kind: str) -> bool:
        """Whether the record's time was taken with the clock unsynchronized: a reading or alarm event whose seq
        lies in a clockUnsynchronized range. Gap records and EFM records and gaps are never flagged."""
        if (kind != "reading" and kind != "alarm") or not self.unsync_lo:
            return False
        i = bisect.bisect_right(self.unsync_lo, seq) - 1
        return i >= 0 and seq <= self.unsync_hi[i]


TOP_REQUIRED = ("schema", "gateway", "epoch", "sentAt", "clockSynchronized")
TOP_OPTIONAL = ("probe", "firstSeq", "lastSeq", "readings", "alarms", "gaps", "clockUnsynchronized")
TOP_OPTIONAL_V2 = TOP_OPTIONAL + ("efm", "efmGaps")
EFM_MEMBERS = ("efm", "efmGaps")


def parse_batch(doc) -> Batch:
    """Checks a decoded JSON body against every rule of the protocol; raises Reject(400) naming the first
    violation with a JSON Pointer. Agrees with docs/sync-batch.schema.json and adds the rules a schema
    cannot express (see "Rules beyond the schema" in docs/sync-protocol.md)."""
    if type(doc) is not dict:
        raise invalid("", f"the body must be a JSON object, not {_kind(doc)}")
    if "schema" in doc and doc["schema"] not in SUPPORTED_SCHEMAS:
        raise Reject(400, "unsupported_schema",
                     f"/schema: {_clip(json.dumps(doc['schema']))} is not a schema this server accepts "
                     f"({', '.join(SUPPORTED_SCHEMAS)})", "/schema", extra={"supported": list(SUPPORTED_SCHEMAS)})
    if doc.get("schema") == SCHEMA_V1:
        for k in EFM_MEMBERS:
            if k in doc:
                raise invalid(f"/{k}", f"unknown member '{k}' in a {SCHEMA_V1} batch: EFM records and gaps "
                                       f"come in {SCHEMA_V2}")
    _object(doc, "", TOP_REQUIRED, TOP_OPTIONAL_V2 if doc.get("schema") == SCHEMA_V2 else TOP_OPTIONAL)
    b = Batch()
    b.schema = doc["schema"]
    g = _object(doc["gateway"], "/gateway", ("id", "tenant", "site", "software"))
    b.gateway = _str(g["id"], "/gateway/id", NAME_RE, what="a gateway id ([A-Za-z0-9][A-Za-z0-9_-]*, at most 64)")
    b.tenant = _str(g["tenant"], "/gateway/tenant", TENANT_RE, what="a tenant slug (a DNS label)")
    b.site = _str(g["site"], "/gateway/site", maxlen=200)
    b.software = _str(g["software"], "/gateway/software", maxlen=64)
    b.epoch = _str(doc["epoch"], "/epoch", EPOCH_RE, what="an epoch (8 to 64 of A-Z a-z 0-9 _ -)")
    b.sent_at = _int(doc["sentAt"], "/sentAt", 0, MAX_SAFE)
    b.clock_synchronized = _bool(doc["clockSynchronized"], "/clockSynchronized")
    b.probe = _bool(doc["probe"], "/probe") if "probe" in doc else False

    series_list = _array(doc.get("readings", []), "/readings")
    alarm_list = _array(doc.get("alarms", []), "/alarms")
    gap_list = _array(doc.get("gaps", []), "/gaps")
    unsync_list = _array(doc.get("clockUnsynchronized", []), "/clockUnsynchronized")
    efm_list = _array(doc.get("efm", []), "/efm")
    efm_gap_list = _array(doc.get("efmGaps", []), "/efmGaps")
    b.unsync_lo, b.unsync_hi = [], []
    b.efm_natural = {}

    if b.probe:
        for k in ("firstSeq", "lastSeq"):
            if k in doc:
                raise invalid(f"/{k}", "a probe carries no records, so no firstSeq or lastSeq", "probe")
        for k, lst in (("readings", series_list), ("alarms", alarm_list), ("gaps", gap_list), ("efm", efm_list),
                       ("efmGaps", efm_gap_list)):
            if lst:
                raise invalid(f"/{k}", "a probe must not carry records", "probe")
        if unsync_list:
            raise invalid("/clockUnsynchronized", "a probe carries no records, so no clockUnsynchronized", "probe")
        b.first_seq = b.last_seq = None
        b.records, b.readings, b.alarms, b.gaps, b.efm, b.efm_gaps = [], 0, 0, 0, 0, 0
        return b

    for k in ("firstSeq", "lastSeq"):
        if k not in doc:
            raise invalid("", f"missing member '{k}'")
    b.first_seq = _int(doc["firstSeq"], "/firstSeq", 1, MAX_SAFE)
    b.last_seq = _int(doc["lastSeq"], "/lastSeq", 1, MAX_SAFE)
    if b.first_seq > b.last_seq:
        raise invalid("/lastSeq", f"lastSeq {b.last_seq} is below firstSeq {b.first_seq}", "semantic")
    if not (series_list or alarm_list or gap_list or efm_list or efm_gap_list):
        raise invalid("", "a batch carries at least one record (a request without records is a probe: "
                          "send it with X-Edged-Probe: 1)")
    _unsync_ranges(unsync_list, b)

    records = []
    append = records.append
    for i, s in enumerate(series_list):
        p = f"/readings/{i}"
        _object(s, p, ("device", "tag", "seq", "t", "v"), ("units", "q"))
        device = _str(s["device"], p + "/device", NAME_RE, what="a device name")
        tag = _str(s["tag"], p + "/tag", TAG_RE, what="a tag name ([A-Za-z_][A-Za-z0-9_]*)")
        units = _str(s["units"], p + "/units", maxlen=32) if "units" in s else None
        seqs = _array(s["seq"], p + "/seq", 1)
        ts = _array(s["t"], p + "/t", 1)
        vs = _array(s["v"], p + "/v", 1)
        qs = _array(s["q"], p + "/q", 1) if "q" in s else None
        n = len(seqs)
        for name, arr in (("t", ts), ("v", vs), ("q", qs)):
            if arr is not None and len(arr) != n:
                raise invalid(f"{p}/{name}", f"has {len(arr)} items but seq has {n}: the arrays of a series "
                                             "are parallel", "semantic")
        key = (device, tag, units)
        seq = 0
        t = 0
        for j in range(n):
            d = seqs[j]
            if type(d) is not int:
                d = _int(d, f"{p}/seq/{j}")
            if d < 1 or d > MAX_SAFE:
                raise invalid(f"{p}/seq/{j}", (f"must be >= 1, got {d}: " + ("seq values are" if j == 0 else
                              "seq deltas are positive (a series is in seq order)")) if d < 1 else
                              f"must be <= {MAX_SAFE}")
            seq += d
            dt = ts[j]
            if type(dt) is not int:
                dt = _int(dt, f"{p}/t/{j}")
            if j == 0:
                if dt < 0 or dt > MAX_SAFE:
                    raise invalid(f"{p}/t/0", f"the first time of a series is absolute UTC milliseconds "
                                              f"(0..{MAX_SAFE}), got {dt}")
                t = dt
            else:
                if dt < -MAX_SAFE or dt > MAX_SAFE:
                    raise invalid(f"{p}/t/{j}", "delta out of range")
                t += dt
                if t < 0 or t > MAX_SAFE:
                    raise invalid(f"{p}/t/{j}", f"decodes to {t}, outside 0..{MAX_SAFE}", "semantic")
            v = vs[j]
            if qs is None:
                q = None
            else:
                q = qs[j]
                if type(q) is not str or not QUALITY_RE.match(q):
                    raise invalid(f"{p}/q/{j}", f"{_clip(json.dumps(q))} is not a quality code (good, timeout, "
                                                "exception-XX, framing, link, decode, offline)")
                if q == "good":
                    q = None
            if v is None:
                if q is None:
                    raise invalid(f"{p}/v/{j}", "is null but the quality is good: a good reading has a value",
                                  "semantic")
            else:
                if q is not None:
                    raise invalid(f"{p}/v/{j}", f"a reading of bad quality ({q}) has no value: write null",
                                  "semantic")
                if type(v) is not float or not math.isfinite(v):
                    v = _number(v, f"{p}/v/{j}", allow_text=True)
            append((seq, "reading", t, key, v, q, None))

    for i, a in enumerate(alarm_list):
        p = f"/alarms/{i}"
        _object(a, p, ("seq", "t", "alarm", "id", "kind", "device", "transition", "priority"),
                ("tag", "level", "value", "limit", "reason", "by", "until"))
        rec = {
            "seq": _int(a["seq"], p + "/seq", 1, MAX_SAFE),
            "t": _int(a["t"], p + "/t", 0, MAX_SAFE),
            "alarm": _str(a["alarm"], p + "/alarm", NAME_RE, what="an alarm name"),
            "id": _str(a["id"], p + "/id", maxlen=128),
            "kind": _enum(a["kind"], p + "/kind",
                          ALARM_KINDS if b.schema == SCHEMA_V2 else tuple(k for k in ALARM_KINDS
                                                                          if k not in V2_ALARM_KINDS)),
            "device": _str(a["device"], p + "/device", NAME_RE, what="a device name"),
            "transition": _enum(a["transition"], p + "/transition", TRANSITIONS),
            "priority": _enum(a["priority"], p + "/priority", PRIORITIES),
        }
        if "tag" in a:
            if rec["kind"] in TAGLESS_KINDS:
                raise invalid(p + "/tag", f"a {rec['kind']} alarm watches no tag: omit tag")
            rec["tag"] = _str(a["tag"], p + "/tag", TAG_RE, what="a tag name")
        elif rec["kind"] not in TAGLESS_KINDS:
            raise invalid(p, f"missing member 'tag' (required for {rec['kind']} alarms)")
        if "level" in a:
            if rec["kind"] != "limit":
                raise invalid(p + "/level", "only limit alarms have a level: omit it")
            rec["level"] = _enum(a["level"], p + "/level", ALARM_LEVELS)
        elif rec["kind"] == "limit":
            raise invalid(p, "missing member 'level' (required for limit alarms)")
        if "value" in a:
            rec["value"] = _number(a["value"], p + "/value", allow_text=True, allow_null=True)
        if "limit" in a:
            rec["limit"] = _number(a["limit"], p + "/limit", allow_null=True)
        if "reason" in a:
            rec["reason"] = _str(a["reason"], p + "/reason", maxlen=500, minlen=0)
        if "by" in a:
            rec["by"] = _str(a["by"], p + "/by", maxlen=64)
        if "until" in a:
            if rec["transition"] != "shelved":
                raise invalid(p + "/until", "until belongs to a shelved transition only")
            rec["until"] = _int(a["until"], p + "/until", 0, MAX_SAFE)
        append((rec["seq"], "alarm", rec["t"], None, None, None, _canonical(rec)))

    for i, g in enumerate(gap_list):
        p = f"/gaps/{i}"
        _object(g, p, ("seq", "firstSeq", "lastSeq", "count", "from", "to", "reason"))
        rec = {
            "seq": _int(g["seq"], p + "/seq", 1, MAX_SAFE),
            "count": _int(g["count"], p + "/count", 1, MAX_SAFE),
            "from": _int(g["from"], p + "/from", 0, MAX_SAFE),
            "to": _int(g["to"], p + "/to", 0, MAX_SAFE),
            "reason": _enum(g["reason"], p + "/reason", GAP_REASONS),
        }
        rec["firstSeq"] = _int(g["firstSeq"], p + "/firstSeq", 1, MAX_SAFE)
        rec["lastSeq"] = _int(g["lastSeq"], p + "/lastSeq", 1, MAX_SAFE)
        if rec["firstSeq"] > rec["lastSeq"]:
            raise invalid(p + "/lastSeq", "is below firstSeq", "semantic")
        if rec["lastSeq"] >= rec["seq"]:
            raise invalid(p + "/lastSeq", f"a gap record reports records lost before it: lastSeq "
                                          f"{rec['lastSeq']} must be below its own seq {rec['seq']}", "semantic")
        if rec["count"] > rec["lastSeq"] - rec["firstSeq"] + 1:
            raise invalid(p + "/count", f"{rec['count']} records cannot fit in seq {rec['firstSeq']}-"
                                        f"{rec['lastSeq']}", "semantic")
        if rec["from"] > rec["to"]:
            raise invalid(p + "/to", "is before from", "semantic")
        append((rec["seq"], "gap", rec["to"], None, None, None, _canonical(rec)))

    for i, e in enumerate(efm_list):
        rec = _efm_record(e, f"/efm/{i}")
        b.efm_natural[rec["seq"]] = rec
        append((rec["seq"], "efm", rec["collectedAt"], None, None, None, _canonical(rec)))

    for i, g in enumerate(efm_gap_list):
        rec = _efm_gap(g, f"/efmGaps/{i}")
        b.efm_natural[rec["seq"]] = rec
        append((rec["seq"], "efm-gap", rec["notedAt"], None, None, None, _canonical(rec)))

    # Every seq once, inside [firstSeq, lastSeq], and both ends present.
    seen: set[int] = set()
    lo, hi = MAX_SAFE + 1, 0
    for r in records:
        s = r[0]
        if s in seen:
            raise invalid("", f"seq {s} appears twice in the batch (every record has its own seq)", "semantic")
        seen.add(s)
        lo = s if s < lo else lo
        hi = s if s > hi else hi
    if lo < b.first_seq or hi > b.last_seq:
        bad = lo if lo < b.first_seq else hi
        raise invalid("", f"seq {bad} lies outside firstSeq-lastSeq {b.first_seq}-{b.last_seq}", "semantic")
    if lo != b.first_seq or hi != b.last_seq:
        raise invalid("", f"firstSeq-lastSeq must be the smallest and largest seq in the batch: the records "
                          f"span {lo}-{hi}, the batch says {b.first_seq}-{b.last_seq}", "semantic")
    b.records = records
    b.readings = len(records) - len(alarm_list) - len(gap_list) - len(efm_list) - len(efm_gap_list)
    b.alarms, b.gaps, b.efm, b.efm_gaps = len(alarm_list), len(gap_list), len(efm_list), len(efm_gap_list)
    return b


EFM_REQUIRED = ("seq", "kind", "device", "meter", "contractHour", "deviceTime", "key", "hash", "collectedAt", "raw")
EVENT_MEMBERS = ("register", "bitmap", "operator", "alarmSet", "limits", "asFound", "asLeft")


def _device_time(x, path) -> str:
    """YYYY-MM-DDTHH:MM:SS, the device's local time without a zone: its shape is a schema rule, a real calendar
    date (no 2024-02-30) a semantic one."""
    t = _str(x, path, DEVICE_TIME_RE, what="a device time YYYY-MM-DDTHH:MM:SS (local, no zone)")
    try:
        datetime.date(int(t[0:4]), int(t[5:7]), int(t[8:10]))
    except ValueError:
        raise invalid(path, f"'{t}' is not a date of the calendar", "semantic")
    return t


def _efm_common(x, path) -> dict:
    return {"device": _str(x["device"], path + "/device", NAME_RE, what="a device name"),
            "meter": _str(x["meter"], path + "/meter", METER_RE,
                          what="a meter id (1-64 of A-Z a-z 0-9 _ . -, starting with a letter or digit)")}


def _efm_record(e, p) -> dict:
    """One item of `efm`: an archive (hourly, daily) or event record of a flow computer. Returns it as the
    receiver keeps it (members in the order a gateway writes them)."""
    kind = e.get("kind") if type(e) is dict else None
    _object(e, p, EFM_REQUIRED + (("event",) if kind == "event" else ("values",)),
            () if kind == "event" else ("units",))
    rec = {"seq": _int(e["seq"], p + "/seq", 1, MAX_SAFE), "kind": _enum(e["kind"], p + "/kind", EFM_KINDS)}
    rec.update(_efm_common(e, p))
    rec["contractHour"] = _int(e["contractHour"], p + "/contractHour", 0, 23)
    rec["deviceTime"] = _device_time(e["deviceTime"], p + "/deviceTime")
    rec["key"] = _str(e["key"], p + "/key", maxlen=EFM_KEY_MAX)
    rec["hash"] = _str(e["hash"], p + "/hash", HASH_RE, what="a hash (16 lowercase hex digits)")
    rec["collectedAt"] = _int(e["collectedAt"], p + "/collectedAt", 0, MAX_SAFE)
    raw = _str(e["raw"], p + "/raw", BASE64_RE, maxlen=EFM_MAX_RAW,
               what="base64 (standard alphabet, with padding)")
    rec["raw"] = raw
    got = fnv1a64(base64.b64decode(raw))
    if got != rec["hash"]:
        raise invalid(p + "/hash", f"{rec['hash']} is not the FNV-1a 64 of the raw bytes ({got}): the record "
                                   "was altered or mis-encoded", "semantic")
    if rec["kind"] == "event":
        ev = _object(e["event"], p + "/event", EVENT_MEMBERS)
        q = p + "/event"
        out = {"register": _int(ev["register"], q + "/register", 0, 65535),
               "bitmap": _int(ev["bitmap"], q + "/bitmap", 0, 65535),
               "operator": _bool(ev["operator"], q + "/operator"),
               "alarmSet": None if ev["alarmSet"] is None else _bool(ev["alarmSet"], q + "/alarmSet")}
        limits = _array(ev["limits"], q + "/limits")
        for j, lim in enumerate(limits):
            _enum(lim, f"{q}/limits/{j}", EFM_LIMITS)
        if len(set(limits)) != len(limits):
            raise invalid(q + "/limits", "names a limit twice")
        out["limits"] = limits
        out["asFound"] = _number(ev["asFound"], q + "/asFound", allow_null=True)
        out["asLeft"] = _number(ev["asLeft"], q + "/asLeft", allow_null=True)
        operator, alarm_set, lims = event_bits(out["bitmap"])
        if out["operator"] != operator:
            raise invalid(q + "/operator", f"bitmap {out['bitmap']} has bit 9 {'set' if operator else 'clear'}: "
                                           f"operator is {json.dumps(operator)}", "semantic")
        if out["alarmSet"] != alarm_set:
            raise invalid(q + "/alarmSet", f"bitmap {out['bitmap']}: alarmSet is {json.dumps(alarm_set)} (null for "
                                           "an operator event, else bit 15)", "semantic")
        if limits != lims:
            raise invalid(q + "/limits", f"bitmap {out['bitmap']} names the limits {json.dumps(lims)} (bits 10-14: "
                                         f"{', '.join(EFM_LIMITS)}, in this order)", "semantic")
        rec["event"] = out
    else:
        vals = e["values"]
        if type(vals) is not dict:
            raise invalid(p + "/values", f"must be an object, not {_kind(vals)}")
        if not vals:
            raise invalid(p + "/values", "must name at least one field")
        values = {}
        for name, v in vals.items():
            _str(name, f"{p}/values/{_esc(name)}", FIELD_RE, what="a field name ([A-Za-z_][A-Za-z0-9_]*, at most 64)")
            values[name] = _number(v, f"{p}/values/{_esc(name)}", allow_null=True)
        rec["values"] = values
        units = {}
        if "units" in e:
            us = e["units"]
            if type(us) is not dict:
                raise invalid(p + "/units", f"must be an object, not {_kind(us)}")
            for name, u in us.items():
                _str(name, f"{p}/units/{_esc(name)}", FIELD_RE, what="a field name")
                units[name] = _str(u, f"{p}/units/{_esc(name)}", maxlen=32)
                if name not in values:
                    raise invalid(f"{p}/units/{_esc(name)}", f"names a field that values does not have", "semantic")
        rec["units"] = units
    return rec


def _efm_gap(g, p) -> dict:
    """One item of `efmGaps`: archive records a flow computer lost before edged could collect them."""
    _object(g, p, ("seq", "kind", "device", "meter", "from", "to", "periods", "notedAt"))
    rec = {"seq": _int(g["seq"], p + "/seq", 1, MAX_SAFE), "kind": _enum(g["kind"], p + "/kind", EFM_GAP_KINDS)}
    rec.update(_efm_common(g, p))
    rec["from"] = _device_time(g["from"], p + "/from")
    rec["to"] = _device_time(g["to"], p + "/to")
    rec["periods"] = _int(g["periods"], p + "/periods", 1, MAX_SAFE)
    rec["notedAt"] = _int(g["notedAt"], p + "/notedAt", 0, MAX_SAFE)
    if rec["from"] >= rec["to"]:
        raise invalid(p + "/to", f"{rec['to']} is not after from {rec['from']}: from is the last record collected "
                                 "before the loss, to the oldest the device still holds", "semantic")
    return rec


def _unsync_ranges(ranges: list, b: Batch) -> None:
    """clockUnsynchronized: [[a, b], ...], inclusive seq ranges, a <= b, sorted and not overlapping (adjacent is
    allowed), within firstSeq..lastSeq. Shape errors are `schema`, the rules between numbers `semantic`."""
    lo, hi = b.unsync_lo, b.unsync_hi
    for i, r in enumerate(ranges):
        p = f"/clockUnsynchronized/{i}"
        if type(r) is not list or len(r) != 2:
            raise invalid(p, f"must be a seq range [first, last] (an array of 2 integers), not "
                             f"{_clip(json.dumps(r))}")
        a = _int(r[0], p + "/0", 1, MAX_SAFE)
        z = _int(r[1], p + "/1", 1, MAX_SAFE)
        if a > z:
            raise invalid(p, f"[{a}, {z}]: the range's first seq is above its last", "semantic")
        if a < b.first_seq or z > b.last_seq:
            raise invalid(p, f"[{a}, {z}] lies outside firstSeq-lastSeq {b.first_seq}-{b.last_seq}", "semantic")
        if hi and a <= hi[-1]:
            raise invalid(p, f"[{a}, {z}] overlaps or precedes the range before it, [{lo[-1]}, {hi[-1]}]: the "
                             "ranges are in ascending order and do not overlap", "semantic")
        lo.append(a)
        hi.append(z)


def _canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _no_constants(name):
    raise ValueError(f"{name} is not JSON")


def _pairs_no_dupes(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise ValueError(f"duplicate member '{_clip(k)}' in an object")
        d[k] = v
    return d


def decode_json(data: bytes):
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Reject(400, "json", f"the body is not UTF-8: {e.reason} at byte {e.start}")
    try:
        return json.loads(text, parse_constant=_no_constants, object_pairs_hook=_pairs_no_dupes)
    except json.JSONDecodeError as e:
        raise Reject(400, "json", f"the body is not JSON: {e.msg} at line {e.lineno} column {e.colno}")
    except (ValueError, RecursionError) as e:
        raise Reject(400, "json", f"the body is not valid JSON: {e}")


def gunzip(data: bytes, limit: int) -> bytes:
    """Inflates a gzip body (one or more members) to at most `limit` bytes."""
    out = []
    total = 0
    while True:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            chunk = d.decompress(data, limit - total + 1)
        except zlib.error as e:
            raise Reject(400, "gzip", f"Content-Encoding is gzip but the body does not inflate: {e}")
        total += len(chunk)
        out.append(chunk)
        if total > limit or d.unconsumed_tail:
            raise Reject(413, "too_large", f"the body inflates to more than {limit} bytes",
                         extra={"limit": limit, "limitOf": "inflated"})
        if not d.eof:
            raise Reject(400, "gzip", "the gzip body is truncated")
        data = d.unused_data
        if not data.strip(b"\0"):
            return b"".join(out)


# ----------------------------------------------------------------------------------------------------------
# Reference encoder (what the gateway does; used by the tests and the worked example)
# ----------------------------------------------------------------------------------------------------------

def encode_readings(readings) -> list[dict]:
    """Groups readings into series in order of first appearance and delta-encodes seq and t.

    readings: iterable of dicts {seq, device, tag, units (or None), t, v, q ("good" or a cause)} in seq order.
    """
    series: dict[tuple, dict] = {}
    last: dict[tuple, tuple[int, int]] = {}
    for r in readings:
        key = (r["device"], r["tag"], r.get("units"))
        s = series.get(key)
        if s is None:
            s = {"device": r["device"], "tag": r["tag"]}
            if r.get("units") is not None:
                s["units"] = r["units"]
            s.update({"seq": [r["seq"]], "t": [r["t"]], "v": [r["v"]], "q": [r.get("q") or "good"]})
            series[key] = s
        else:
            ls, lt = last[key]
            s["seq"].append(r["seq"] - ls)
            s["t"].append(r["t"] - lt)
            s["v"].append(r["v"])
            s["q"].append(r.get("q") or "good")
        last[key] = (r["seq"], r["t"])
    out = list(series.values())
    for s in out:
        if all(q == "good" for q in s["q"]):
            del s["q"]
    return out


def expand_records(batch_doc) -> list[dict]:
    """The records of a (valid) batch body, one dict each, in seq order: the inverse of the encoding."""
    b = parse_batch(batch_doc)
    out = []
    for seq, kind, t, key, v, q, body in sorted(b.records, key=lambda r: r[0]):
        out.append(_record_dict(seq, kind, t, key, v, q, body, b.time_unsynchronized(seq, kind)))
    return out


def _record_dict(seq, kind, t, key, v, q, body, unsync=False) -> dict:
    """One record as the admin endpoint shows it; "clockSynchronized": false only on a reading or alarm event
    whose time was taken with the clock unsynchronized (absent otherwise)."""
    if kind == "reading":
        d = {"seq": seq, "kind": "reading", "device": key[0], "tag": key[1]}
        if key[2] is not None:
            d["units"] = key[2]
        d.update({"t": t, "v": v, "q": q or "good"})
    else:
        d = {"seq": seq, "kind": kind, "record": json.loads(body)}
    if unsync:
        d["clockSynchronized"] = False
    return d


# ----------------------------------------------------------------------------------------------------------
# Storage
# ----------------------------------------------------------------------------------------------------------

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS streams (          -- one row per (gateway, epoch): a gateway's buffer file
    id       INTEGER PRIMARY KEY,
    gateway  TEXT NOT NULL,
    epoch    TEXT NOT NULL,
    UNIQUE (gateway, epoch)
);
CREATE TABLE IF NOT EXISTS series (
    id       INTEGER PRIMARY KEY,
    device   TEXT NOT NULL,
    tag      TEXT NOT NULL,
    units    TEXT NOT NULL,                    -- '' when the tag has no units
    UNIQUE (device, tag, units)
);
CREATE TABLE IF NOT EXISTS batches (          -- every batch answered 2xx (retries included)
    id                 INTEGER PRIMARY KEY,
    received_at        INTEGER NOT NULL,       -- receiver clock, UTC ms
    stream             INTEGER NOT NULL REFERENCES streams(id),
    first_seq          INTEGER NOT NULL,
    last_seq           INTEGER NOT NULL,
    records            INTEGER NOT NULL,
    stored             INTEGER NOT NULL,
    duplicates         INTEGER NOT NULL,
    body_bytes         INTEGER NOT NULL,       -- on the wire (gzip'd)
    sent_at            INTEGER NOT NULL,       -- gateway clock, UTC ms
    clock_synchronized INTEGER NOT NULL,
    tenant             TEXT NOT NULL,
    site               TEXT NOT NULL,
    software           TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS records (          -- the dedup key is the primary key: (gateway, epoch) + seq
    stream   INTEGER NOT NULL REFERENCES streams(id),
    seq      INTEGER NOT NULL,
    kind     TEXT NOT NULL,                    -- reading | alarm | gap
    t        INTEGER,                          -- reading/alarm time, gap 'to'; UTC ms
    series   INTEGER REFERENCES series(id),    -- readings
    value,                                     -- readings: REAL, INTEGER, TEXT, or NULL when bad
    quality  TEXT,                             -- readings: NULL when good, else the cause
    body     TEXT,                             -- alarms and gaps: the record as canonical JSON
    batch    INTEGER NOT NULL REFERENCES batches(id),
    clock_unsync INTEGER NOT NULL DEFAULT 0,   -- 1: a reading/alarm timed while the clock was unsynchronized
    PRIMARY KEY (stream, seq)
) WITHOUT ROWID;
-- EFM (schema /2). Every EFM record and gap also has its row in records (kind efm | efm-gap, body = the record
-- as received), which deduplicates by (gateway, epoch, seq); these tables add the natural identity (§6).
CREATE TABLE IF NOT EXISTS efm_records (      -- the first copy of each record, never changed
    id            INTEGER PRIMARY KEY,
    gateway       TEXT NOT NULL,
    device        TEXT NOT NULL,
    kind          TEXT NOT NULL,               -- hourly | daily | event
    key           TEXT NOT NULL,
    hash          TEXT NOT NULL,               -- FNV-1a 64 of raw, 16 hex digits
    meter         TEXT NOT NULL,
    contract_hour INTEGER NOT NULL,
    device_time   TEXT NOT NULL,               -- device-local YYYY-MM-DDTHH:MM:SS
    collected_at  INTEGER NOT NULL,            -- UTC ms, gateway clock
    raw           BLOB NOT NULL,               -- the bytes as the device sent them
    data          TEXT NOT NULL,               -- {"values", "units"} or {"event"}, canonical JSON
    stream        INTEGER NOT NULL REFERENCES streams(id),
    seq           INTEGER NOT NULL,
    batch         INTEGER NOT NULL REFERENCES batches(id),
    UNIQUE (gateway, device, kind, key)
);
CREATE TABLE IF NOT EXISTS efm_conflicts (    -- later copies whose bytes differ from the stored record's
    id            INTEGER PRIMARY KEY,
    gateway       TEXT NOT NULL,
    device        TEXT NOT NULL,
    kind          TEXT NOT NULL,
    key           TEXT NOT NULL,
    hash          TEXT NOT NULL,
    stored_hash   TEXT NOT NULL,               -- the hash of the record kept in efm_records
    meter         TEXT NOT NULL,
    contract_hour INTEGER NOT NULL,
    device_time   TEXT NOT NULL,
    collected_at  INTEGER NOT NULL,
    raw           BLOB NOT NULL,
    data          TEXT NOT NULL,
    stream        INTEGER NOT NULL REFERENCES streams(id),
    seq           INTEGER NOT NULL,
    batch         INTEGER NOT NULL REFERENCES batches(id),
    received_at   INTEGER NOT NULL,            -- receiver clock, UTC ms
    UNIQUE (gateway, device, kind, key, hash)  -- the same changed copy again is a duplicate
);
CREATE TABLE IF NOT EXISTS efm_gaps (
    id            INTEGER PRIMARY KEY,
    gateway       TEXT NOT NULL,
    device        TEXT NOT NULL,
    kind          TEXT NOT NULL,               -- hourly | daily
    meter         TEXT NOT NULL,
    from_time     TEXT NOT NULL,               -- device-local, the last record collected before the loss
    to_time       TEXT NOT NULL,               -- device-local, the oldest record the device still held
    periods       INTEGER NOT NULL,
    noted_at      INTEGER NOT NULL,
    stream        INTEGER NOT NULL REFERENCES streams(id),
    seq           INTEGER NOT NULL,
    batch         INTEGER NOT NULL REFERENCES batches(id),
    UNIQUE (gateway, device, kind, from_time, to_time)
);
"""

# Columns added after a store file may have been created: (table, column, definition), added when missing.
ADDED_COLUMNS = (
    ("records", "clock_unsync", "INTEGER NOT NULL DEFAULT 0"),
)


class Conflict(Exception):
    def __init__(self, seqs):
        super().__init__(seqs)
        self.seqs = seqs


class Ingested(tuple):
    """What ingest() did: (stored, duplicates), plus efm_conflicts: how many of the stored records are EFM
    conflicts (kept aside, counted in stored)."""

    def __new__(cls, stored: int, duplicates: int, efm_conflicts: int = 0):
        t = super().__new__(cls, (stored, duplicates))
        t.efm_conflicts = efm_conflicts
        return t


class Store:
    """SQLite in WAL mode with synchronous=FULL: a COMMIT is on disk before ingest() returns."""

    def __init__(self, path: str):
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA_SQL)
        for table, column, decl in ADDED_COLUMNS:  # a store made by an older receiver
            if column not in {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}:
                self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")
        self.lock = threading.Lock()
        self.streams: dict[tuple[str, str], int] = {}
        self.series: dict[tuple, int] = {}
        self.db.execute("PRAGMA quick_check").fetchone()

    def _stream_id(self, gateway, epoch) -> int:
        sid = self.streams.get((gateway, epoch))
        if sid is None:
            self.db.execute("INSERT OR IGNORE INTO streams (gateway, epoch) VALUES (?, ?)", (gateway, epoch))
            sid = self.db.execute("SELECT id FROM streams WHERE gateway=? AND epoch=?", (gateway, epoch)).fetchone()[0]
            self.streams[(gateway, epoch)] = sid
        return sid

    def _series_id(self, key) -> int:
        sid = self.series.get(key)
        if sid is None:
            row = (key[0], key[1], key[2] or "")
            self.db.execute("INSERT OR IGNORE INTO series (device, tag, units) VALUES (?, ?, ?)", row)
            sid = self.db.execute("SELECT id FROM series WHERE device=? AND tag=? AND units=?", row).fetchone()[0]
            self.series[key] = sid
        return sid

    def ingest(self, b: Batch, body_bytes: int) -> Ingested:
        """Stores the batch's new records in one transaction; returns (stored, duplicates) with .efm_conflicts.
        Raises Conflict (nothing stored) when a known (gateway, epoch, seq) arrives with different content.
        The clock flag is not content: a duplicate keeps the flag stored first.
        EFM records and gaps new by (gateway, epoch, seq) are then deduplicated by their natural identity
        (_efm_natural); their seq is recorded either way, so that a retry finds it."""
        with self.lock:
            db = self.db
            db.execute("BEGIN IMMEDIATE")
            try:
                sid = self._stream_id(b.gateway, b.epoch)
                known = {row[0]: row[1:] for row in db.execute(
                    "SELECT seq, kind, t, series, value, quality, body FROM records "
                    "WHERE stream=? AND seq BETWEEN ? AND ?", (sid, b.first_seq, b.last_seq))}
                new, duplicates, conflicts = [], 0, []
                unsync = b.time_unsynchronized
                for seq, kind, t, key, v, q, body in b.records:
                    ser = self._series_id(key) if key is not None else None
                    k = known.get(seq)
                    if k is None:
                        new.append((sid, seq, kind, t, ser, v, q, body, int(unsync(seq, kind))))
                    elif k == (kind, t, ser, v, q, body):
                        duplicates += 1
                    else:
                        conflicts.append(seq)
                if conflicts:
                    raise Conflict(sorted(conflicts))
                new.sort(key=lambda r: r[1])  # in key order: cheaper B-tree inserts
                now = int(time.time() * 1000)
                cur = db.execute(
                    "INSERT INTO batches (received_at, stream, first_seq, last_seq, records, stored, duplicates, "
                    "body_bytes, sent_at, clock_synchronized, tenant, site, software) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (now, sid, b.first_seq, b.last_seq, len(b.records), len(new), duplicates,
                     body_bytes, b.sent_at, int(b.clock_synchronized), b.tenant, b.site, b.software))
                batch_id = cur.lastrowid
                db.executemany("INSERT INTO records (stream, seq, kind, t, series, value, quality, body, "
                               "clock_unsync, batch) VALUES (?,?,?,?,?,?,?,?,?,?)", [r + (batch_id,) for r in new])
                stored, efm_conflicts = len(new), 0
                if b.efm_natural:
                    known_natural, efm_conflicts = self._efm_natural(b, sid, batch_id, now,
                                                                     [r[1] for r in new if r[1] in b.efm_natural])
                    stored -= known_natural
                    duplicates += known_natural
                    if known_natural:
                        db.execute("UPDATE batches SET stored=?, duplicates=? WHERE id=?",
                                   (stored, duplicates, batch_id))
                db.execute("COMMIT")  # synchronous=FULL: the WAL is fsync'd before this returns
                return Ingested(stored, duplicates, efm_conflicts)
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                self.streams.clear()  # ids created inside the rolled-back transaction are gone
                self.series.clear()
                raise

    def _efm_natural(self, b: Batch, sid: int, batch_id: int, now: int, seqs: list[int]) -> tuple[int, int]:
        """The EFM records and gaps of the batch that are new by (gateway, epoch, seq), in seq order, by their
        natural identity: a record by (gateway, device, kind, key) -- new: kept in efm_records; the same hash:
        a duplicate; another hash: an EFM conflict, kept aside in efm_conflicts (counted as stored) unless that
        same copy is there already (a duplicate); a gap by (gateway, device, kind, from, to).
        Returns (duplicates by natural identity, conflicts stored)."""
        db = self.db
        dups = conflicts = 0
        for seq in seqs:
            r = b.efm_natural[seq]
            if "from" in r:  # an EFM gap
                cur = db.execute(
                    "INSERT OR IGNORE INTO efm_gaps (gateway, device, kind, meter, from_time, to_time, periods, "
                    "noted_at, stream, seq, batch) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (b.gateway, r["device"], r["kind"], r["meter"], r["from"], r["to"], r["periods"], r["notedAt"],
                     sid, seq, batch_id))
                dups += cur.rowcount == 0
                continue
            data = _canonical({"event": r["event"]} if r["kind"] == "event" else
                              {"values": r["values"], "units": r["units"]})
            row = (b.gateway, r["device"], r["kind"], r["key"], r["hash"], r["meter"], r["contractHour"],
                   r["deviceTime"], r["collectedAt"], base64.b64decode(r["raw"]), data, sid, seq, batch_id)
            have = db.execute("SELECT hash FROM efm_records WHERE gateway=? AND device=? AND kind=? AND key=?",
                              (b.gateway, r["device"], r["kind"], r["key"])).fetchone()
            if have is None:
                db.execute("INSERT INTO efm_records (gateway, device, kind, key, hash, meter, contract_hour, "
                           "device_time, collected_at, raw, data, stream, seq, batch) "
                           "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", row)
            elif have[0] == r["hash"]:
                dups += 1
            else:
                cur = db.execute(
                    "INSERT OR IGNORE INTO efm_conflicts (gateway, device, kind, key, hash, meter, contract_hour, "
                    "device_time, collected_at, raw, data, stream, seq, batch, stored_hash, received_at) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", row + (have[0], now))
                if cur.rowcount:
                    conflicts += 1
                else:
                    dups += 1
        return dups, conflicts

    def summary(self) -> dict:
        with self.lock:
            rows = self.db.execute(
                "SELECT s.gateway, s.epoch, count(*), sum(r.kind='reading'), sum(r.kind='alarm'), "
                "sum(r.kind='gap'), sum(r.kind='efm'), sum(r.kind='efm-gap'), min(r.seq), max(r.seq) "
                "FROM records r JOIN streams s ON s.id = r.stream "
                "GROUP BY r.stream ORDER BY s.gateway, s.epoch").fetchall()
            nb = self.db.execute("SELECT count(*) FROM batches").fetchone()[0]
            efm = [self.db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                   for t in ("efm_records", "efm_conflicts", "efm_gaps")]
        total = sum(r[2] for r in rows)
        return {"records": total, "batches": nb,
                "efm": {"records": efm[0], "conflicts": efm[1], "gaps": efm[2]}, "byEpoch": [
                    {"gateway": g, "epoch": e, "records": n, "readings": nr, "alarms": na, "gaps": ng, "efm": ne,
                     "efmGaps": neg, "minSeq": lo, "maxSeq": hi} for g, e, n, nr, na, ng, ne, neg, lo, hi in rows]}

    # -- EFM, for the admin endpoint ---------------------------------------------------------------------

    @staticmethod
    def _where(gateway, device, kind):
        conds, args = [], []
        for col, v in (("x.gateway", gateway), ("x.device", device), ("x.kind", kind)):
            if v is not None:
                conds.append(f"{col}=?")
                args.append(v)
        return (" WHERE " + " AND ".join(conds)) if conds else "", args

    def efm_records(self, gateway=None, device=None, kind=None, conflicts=False, limit=100000) -> list[dict]:
        """The EFM records kept (conflicts=False: the first copy of each natural identity) or set aside
        (conflicts=True), ordered by gateway, device, kind, deviceTime, key (conflicts: then by arrival)."""
        table = "efm_conflicts" if conflicts else "efm_records"
        extra = ", x.stored_hash, x.received_at" if conflicts else ""
        where, args = self._where(gateway, device, kind)
        with self.lock:
            rows = self.db.execute(
                f"SELECT x.gateway, x.device, x.kind, x.key, x.hash, x.meter, x.contract_hour, x.device_time, "
                f"x.collected_at, x.raw, x.data, s.epoch, x.seq{extra} FROM {table} x "
                f"JOIN streams s ON s.id = x.stream{where} "
                f"ORDER BY x.gateway, x.device, x.kind, x.device_time, x.key, x.id LIMIT ?", args + [limit]).fetchall()
        out = []
        for row in rows:
            gw, dev, kind_, key, h, meter, ch, dt, at, raw, data, ep, seq = row[:13]
            d = {"gateway": gw, "device": dev, "kind": kind_, "key": key, "hash": h, "meter": meter,
                 "contractHour": ch, "deviceTime": dt, "collectedAt": at, "raw": base64.b64encode(raw).decode()}
            d.update(json.loads(data))
            d.update({"epoch": ep, "seq": seq})
            if conflicts:
                d.update({"storedHash": row[13], "receivedAt": row[14]})
            out.append(d)
        return out

    def efm_gaps(self, gateway=None, device=None, kind=None, limit=100000) -> list[dict]:
        where, args = self._where(gateway, device, kind)
        with self.lock:
            rows = self.db.execute(
                f"SELECT x.gateway, x.device, x.kind, x.meter, x.from_time, x.to_time, x.periods, x.noted_at, "
                f"s.epoch, x.seq FROM efm_gaps x JOIN streams s ON s.id = x.stream{where} "
                f"ORDER BY x.gateway, x.device, x.kind, x.from_time, x.to_time LIMIT ?", args + [limit]).fetchall()
        return [{"gateway": gw, "device": dev, "kind": k, "meter": m, "from": f, "to": t, "periods": n,
                 "notedAt": at, "epoch": ep, "seq": seq} for gw, dev, k, m, f, t, n, at, ep, seq in rows]

    def efm_counts(self, gateway=None, device=None) -> dict:
        where, args = self._where(gateway, device, None)
        per: dict[tuple, dict] = {}
        totals = {}
        with self.lock:
            for table, name in (("efm_records", "records"), ("efm_conflicts", "conflicts"), ("efm_gaps", "gaps")):
                n = 0
                for gw, dev, kind, c in self.db.execute(
                        f"SELECT x.gateway, x.device, x.kind, count(*) FROM {table} x{where} "
                        "GROUP BY x.gateway, x.device, x.kind", args):
                    e = per.setdefault((gw, dev, kind), {"gateway": gw, "device": dev, "kind": kind, "records": 0,
                                                         "conflicts": 0, "gaps": 0})
                    e[name] = c
                    n += c
                totals[name] = n
        return {**totals, "byDevice": [per[k] for k in sorted(per)]}

    def seq_ranges(self, gateway: str, epoch: str) -> dict:
        with self.lock:
            row = self.db.execute("SELECT id FROM streams WHERE gateway=? AND epoch=?", (gateway, epoch)).fetchone()
            seqs = [] if row is None else [r[0] for r in self.db.execute(
                "SELECT seq FROM records WHERE stream=? ORDER BY seq", (row[0],))]
        ranges = []
        for s in seqs:
            if ranges and ranges[-1][1] == s - 1:
                ranges[-1][1] = s
            else:
                ranges.append([s, s])
        return {"gateway": gateway, "epoch": epoch, "count": len(seqs), "ranges": ranges}

    def records(self, gateway: str, epoch: str, after: int, limit: int) -> list[dict]:
        with self.lock:
            rows = self.db.execute(
                "SELECT r.seq, r.kind, r.t, se.device, se.tag, se.units, r.value, r.quality, r.body, "
                "r.clock_unsync FROM records r JOIN streams s ON s.id = r.stream "
                "LEFT JOIN series se ON se.id = r.series "
                "WHERE s.gateway=? AND s.epoch=? AND r.seq > ? ORDER BY r.seq LIMIT ?",
                (gateway, epoch, after, limit)).fetchall()
        return [_record_dict(seq, kind, t, (dev, tag, units or None), v, q, body, bool(unsync))
                for seq, kind, t, dev, tag, units, v, q, body, unsync in rows]

    def close(self):
        with self.lock:
            try:
                self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                self.db.close()


# ----------------------------------------------------------------------------------------------------------
# Tokens, faults, statistics
# ----------------------------------------------------------------------------------------------------------

class Tokens:
    """The tokens file: one token per line (any gateway), or `gateway-id:token` (that gateway only).
    Blank lines and lines starting with # are ignored. Re-read when the file changes."""

    def __init__(self, path: str):
        self.path = path
        self.lock = threading.Lock()
        self.stamp = None
        self.entries: list[tuple[str | None, bytes]] = []
        self._reload(first=True)

    def _reload(self, first=False):
        st = os.stat(self.path)
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp == self.stamp:
            return
        entries = []
        with open(self.path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                gw, sep, tok = line.rpartition(":")
                gw = gw if sep else None
                if not TOKEN_RE.match(tok) or (gw is not None and not NAME_RE.match(gw)):
                    raise ValueError(f"{self.path}:{n}: expected 'token' or 'gateway-id:token'")
                entries.append((gw, tok.encode()))
        if not entries and first:
            raise ValueError(f"{self.path}: no tokens")
        self.entries, self.stamp = entries, stamp
        if not first:
            log(f"tokens: reloaded {self.path} ({len(entries)} tokens)")

    def lookup(self, token: str) -> tuple[bool, str | None]:
        """(known, gateway the token is bound to or None for any gateway)."""
        with self.lock:
            try:
                self._reload()
            except (OSError, ValueError) as e:
                log(f"tokens: keeping the previous tokens: {e}")
            entries = self.entries
        t = token.encode()
        found = None
        for gw, tok in entries:  # compare with every entry in constant time
            if hmac.compare_digest(t, tok) and found is None:
                found = (True, gw)
        return found or (False, None)


FAULT_MODES = ("none", "status", "drop-response-after-store", "drop-before-store", "refuse", "delay")


class Faults:
    """Injected faults, set through the admin endpoint. A fault with a count applies to that many requests
    (connections for 'refuse'), then the receiver is back to normal; without a count it stays until replaced."""

    def __init__(self):
        self.lock = threading.Lock()
        self.spec = {"mode": "none"}
        self.left: int | None = None
        self.applied = 0

    def set(self, spec) -> dict:
        if type(spec) is not dict:
            raise ValueError("expected a JSON object")
        mode = spec.get("mode")
        if mode not in FAULT_MODES:
            raise ValueError(f"mode must be one of {', '.join(FAULT_MODES)}")
        allowed = {"mode", "count"} | {"status": {"code", "retryAfter", "retryAfterDateIn", "body"},
                                       "delay": {"ms"}}.get(mode, set())
        for k in spec:
            if k not in allowed:
                raise ValueError(f"'{k}' does not apply to mode {mode} (allowed: {', '.join(sorted(allowed))})")
        count = spec.get("count")
        if count is not None and (type(count) is not int or count < 1):
            raise ValueError("count must be an integer >= 1 (omit it for 'until replaced')")
        if mode == "status":
            code = spec.get("code")
            if type(code) is not int or not 300 <= code <= 599:
                raise ValueError("status needs code: an HTTP status 300..599")
            ra = spec.get("retryAfter")
            if ra is not None and not (type(ra) is int and ra >= 0 or type(ra) is str):
                raise ValueError("retryAfter is seconds (integer) or a string sent as is (an HTTP date)")
            rd = spec.get("retryAfterDateIn")
            if rd is not None and (type(rd) is not int or rd < 0):
                raise ValueError("retryAfterDateIn is seconds from now, sent as an HTTP date")
        if mode == "delay" and (type(spec.get("ms")) is not int or spec["ms"] < 0):
            raise ValueError("delay needs ms: an integer >= 0")
        with self.lock:
            self.spec = dict(spec)
            self.left = count if mode != "none" else None
            self.applied = 0
            return self.state()

    def state(self) -> dict:
        return {**self.spec, "remaining": self.left, "applied": self.applied}

    def take(self, *modes) -> dict | None:
        with self.lock:
            if self.spec["mode"] not in modes:
                return None
            spec = self.spec
            self.applied += 1
            if self.left is not None:
                self.left -= 1
                if self.left <= 0:
                    self.spec, self.left = {"mode": "none"}, None
            return spec


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.started = time.time()
        self.c = {"requests": 0, "batches": 0, "probes": 0, "recordsReceived": 0, "recordsStored": 0,
                  "duplicates": 0, "conflicts": 0, "efmConflicts": 0, "bodyBytes": 0, "headerBytes": 0,
                  "inflatedBytes": 0, "tlsHandshakeFailures": 0, "faultsApplied": 0}
        self.status: dict[str, int] = {}
        self.epochs: dict[tuple[str, str], dict] = {}
        self.last_batch = None

    def count(self, **kw):
        with self.lock:
            for k, v in kw.items():
                self.c[k] += v

    def answered(self, status: int):
        with self.lock:
            self.status[str(status)] = self.status.get(str(status), 0) + 1

    def batch(self, info: dict):
        with self.lock:
            self.c["batches"] += 1
            self.c["recordsReceived"] += info["records"]
            self.c["recordsStored"] += info["stored"]
            self.c["duplicates"] += info["duplicates"]
            self.c["efmConflicts"] += info["efmConflicts"]
            e = self.epochs.setdefault((info["gateway"], info["epoch"]),
                                       {"gateway": info["gateway"], "epoch": info["epoch"], "batches": 0,
                                        "recordsStored": 0, "duplicates": 0, "bodyBytes": 0})
            e["batches"] += 1
            e["recordsStored"] += info["stored"]
            e["duplicates"] += info["duplicates"]
            e["bodyBytes"] += info["bodyBytes"]
            self.last_batch = info

    def snapshot(self) -> dict:
        with self.lock:
            return {"since": _iso(self.started), **self.c, "byStatus": dict(self.status),
                    "byEpoch": [dict(v) for v in self.epochs.values()], "lastBatch": self.last_batch}


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


_log_lock = threading.Lock()


def log(line: str):
    with _log_lock:
        sys.stdout.write(f"{_iso(time.time())} {line}\n")
        sys.stdout.flush()


# ----------------------------------------------------------------------------------------------------------
# The batch endpoint
# ----------------------------------------------------------------------------------------------------------

class App:
    def __init__(self, opts, tokens: Tokens, store: Store):
        self.opts = opts
        self.tokens = tokens
        self.store = store
        self.faults = Faults()
        self.stats = Stats()
        self.inflight = 0
        self.inflight_lock = threading.Lock()
        self.stopping = threading.Event()
        self.ssl_ctx = self._ssl_context()

    def _ssl_context(self) -> ssl.SSLContext:
        o = self.opts
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(o.cert, o.key)
        ctx.set_alpn_protocols(["http/1.1"])  # no HTTP/2 here: a client offering h2 falls back to HTTP/1.1
        if o.client_ca:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(cafile=o.client_ca)
        return ctx


class BatchHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the gateway reuses its connection
    server_version = "wellpulse-edge-receiver/1"
    sys_version = ""
    disable_nagle_algorithm = True
    app: App  # set on the subclass made by main()

    def version_string(self):
        return self.server_version

    # -- plumbing ------------------------------------------------------------------------------------------

    def setup(self):
        self.timeout = self.app.opts.idle_timeout
        super().setup()
        self.peer = self._peer_name()

    def _peer_name(self) -> str:
        try:
            cert = self.connection.getpeercert()
        except (AttributeError, ValueError):
            cert = None
        if cert:
            for rdn in cert.get("subject", ()):
                for k, v in rdn:
                    if k == "commonName":
                        return f"{self.client_address[0]} cn={v}"
        return self.client_address[0]

    def log_message(self, fmt, *args):  # the stock access log is replaced by one line per request
        pass

    def log_error(self, fmt, *args):
        msg = fmt % args
        if "timed out" not in msg:  # an idle keep-alive connection timing out is normal
            log(f"{self.peer} {msg}")

    def parse_request(self):
        self.pre = None
        self.t0 = time.monotonic()
        return super().parse_request()

    def handle_expect_100(self):
        # Decide everything that does not need the body before the gateway sends it.
        self.pre = self._precheck()
        if isinstance(self.pre, Reject) or self.pre == "probe-done":
            self._answer_reject(self.pre, close=True) if isinstance(self.pre, Reject) else self._answer_probe(close=True)
            return False
        return super().handle_expect_100()

    def _send(self, status: int, body: dict | None, headers: dict[str, str] | None = None, close=False):
        self.send_response(status)
        data = b""
        if body is not None:
            data = (json.dumps(body, separators=(",", ":")) + "\n").encode()
            self.send_header("Content-Type", "application/json")
        if status != 204 and not (100 <= status < 200):
            self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if close or self.close_connection or self.app.stopping.is_set():
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if data and self.command != "HEAD":
            self.wfile.write(data)
        self.app.stats.answered(status)

    def _answer_reject(self, r: Reject, close=False, what=""):
        self._send(r.status, r.body(), r.headers, close=close)
        log(f"{r.status} {self.peer} {what}{r.code}: {r.message}")

    def _answer_probe(self, close=False):
        self.app.stats.count(probes=1)
        self._send(204, None, close=close)
        log(f"204 {self.peer} probe ok ({(time.monotonic() - self.t0) * 1000:.1f} ms)")

    def _drain_body(self):
        """Reads and discards a body we will not process, so the connection stays usable; closes it when
        the body is too large to be worth reading."""
        try:
            if self.headers.get("Transfer-Encoding"):
                self.close_connection = True
                return
            n = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            return
        if n > max(self.app.opts.max_body, 1 << 20) * 4:
            self.close_connection = True
            return
        while n > 0:
            chunk = self.rfile.read(min(n, 1 << 16))
            if not chunk:
                self.close_connection = True
                return
            n -= len(chunk)

    # -- methods -------------------------------------------------------------------------------------------

    def do_GET(self):
        self._not_post()

    do_HEAD = do_PUT = do_DELETE = do_PATCH = do_GET

    def _not_post(self):
        self._drain_body()
        if urllib.parse.urlsplit(self.path).path != self.app.opts.path:
            self._answer_reject(Reject(404, "not_found", f"no such endpoint; batches go to POST {self.app.opts.path}"))
        else:
            self._answer_reject(Reject(405, "method_not_allowed", "batches are sent with POST",
                                       headers={"Allow": "POST"}))

    def do_POST(self):
        with self.app.inflight_lock:
            self.app.inflight += 1
        try:
            self._post()
        finally:
            with self.app.inflight_lock:
                self.app.inflight -= 1

    def _precheck(self):
        """Everything decided from the request line and headers. Returns a Reject, 'probe-done' (a probe
        without body, answered 204), or a dict of facts for _post."""
        app, o, h = self.app, self.app.opts, self.headers
        app.stats.count(requests=1)
        if urllib.parse.urlsplit(self.path).path != o.path:
            return Reject(404, "not_found", f"no such endpoint; batches go to POST {o.path}")
        if app.stopping.is_set():
            return Reject(503, "stopping", "the receiver is shutting down", headers={"Retry-After": "5"})
        f = app.faults.take("status", "delay")
        if f is not None:
            app.stats.count(faultsApplied=1)
            if f["mode"] == "delay":
                time.sleep(f["ms"] / 1000)
            else:
                hdrs = {}
                if "retryAfter" in f:
                    hdrs["Retry-After"] = str(f["retryAfter"])
                elif "retryAfterDateIn" in f:
                    hdrs["Retry-After"] = email.utils.formatdate(time.time() + f["retryAfterDateIn"], usegmt=True)
                r = Reject(f["code"], "injected", f"fault injection: status {f['code']}", headers=hdrs)
                if "body" in f:
                    r.extra = {"detail": f["body"]}
                return r
        if app.inflight > o.max_inflight:
            return Reject(503, "overloaded", f"more than {o.max_inflight} batches in progress; retry later",
                          headers={"Retry-After": "1"})
        # Authentication: a bearer token from the tokens file.
        auth = h.get("Authorization")
        challenge = {"WWW-Authenticate": 'Bearer realm="wellpulse-edge"'}
        if not auth:
            return Reject(401, "missing_token", "Authorization: Bearer <token> is required", headers=challenge)
        scheme, _, token = auth.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not TOKEN_RE.match(token):
            return Reject(401, "invalid_token", "the Authorization header is not 'Bearer <token>'",
                          headers={"WWW-Authenticate": 'Bearer realm="wellpulse-edge", error="invalid_request"'})
        known, bound = app.tokens.lookup(token)
        if not known:
            return Reject(401, "invalid_token", "the token is not valid (unknown, revoked or expired)",
                          headers={"WWW-Authenticate": 'Bearer realm="wellpulse-edge", error="invalid_token"'})
        probe = h.get("X-Edged-Probe")
        if probe is not None and probe.strip() != "1":
            return Reject(400, "probe", "X-Edged-Probe must be 1")
        probe = probe is not None
        te = h.get("Transfer-Encoding")
        cl = h.get("Content-Length")
        if te is not None and te.strip().lower() != "chunked":
            return Reject(400, "bad_request", f"Transfer-Encoding {te!r} is not supported (use chunked or "
                                              "Content-Length)", headers={"Connection": "close"})
        if te is None:
            if cl is None:
                if probe:
                    return "probe-done"
                return Reject(411, "length_required", "Content-Length is required")
            try:
                length = int(cl)
                if length < 0:
                    raise ValueError
            except ValueError:
                return Reject(400, "bad_request", f"Content-Length {cl!r} is not a byte count")
            if length == 0 and probe:
                return "probe-done"
            if length > o.max_body:
                return Reject(413, "too_large", f"the body is {length} bytes; the limit is {o.max_body} bytes on "
                                                "the wire: split the batch", extra={"limit": o.max_body,
                                                                                    "limitOf": "body"})
        ctype = (h.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            return Reject(400, "content_type", f"Content-Type must be application/json, not {ctype or 'absent'!r}")
        enc = (h.get("Content-Encoding") or "identity").strip().lower()
        if enc not in ("gzip", "identity"):
            return Reject(400, "content_encoding", f"Content-Encoding {enc!r} is not supported: use gzip")
        return {"bound": bound, "probe": probe, "gzip": enc == "gzip", "chunked": te is not None,
                "length": None if te is not None else length}

    def _read_body(self, pre) -> bytes:
        limit = self.app.opts.max_body
        if not pre["chunked"]:
            data = self.rfile.read(pre["length"])
            if len(data) != pre["length"]:
                raise ConnectionError("the client closed the connection before sending the whole body")
            return data
        parts, total = [], 0
        while True:
            line = self.rfile.readline(1024)
            if not line.endswith(b"\n"):
                raise ConnectionError("truncated chunked body")
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise Reject(400, "bad_request", "malformed chunk size", headers={"Connection": "close"})
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            total += size
            if total > limit:
                raise Reject(413, "too_large", f"the body is over the limit of {limit} bytes on the wire: split "
                                               "the batch", extra={"limit": limit, "limitOf": "body"})
            chunk = self.rfile.read(size)
            if len(chunk) != size:
                raise ConnectionError("truncated chunked body")
            parts.append(chunk)
            self.rfile.readline(8)

    def _header_bytes(self) -> int:
        return len(self.raw_requestline) + sum(len(k) + len(v) + 4 for k, v in self.headers.items()) + 2

    def _post(self):
        app, o = self.app, self.app.opts
        pre = self.pre if self.pre is not None else self._precheck()
        self.pre = None
        if isinstance(pre, Reject):
            if self.headers.get("Expect", "").lower() != "100-continue":
                self._drain_body()
            self._answer_reject(pre)
            return
        if pre == "probe-done":
            self._answer_probe()
            return
        try:
            data = self._read_body(pre)
        except TimeoutError:
            self._answer_reject(Reject(408, "request_timeout", f"the body did not arrive within "
                                                               f"{o.idle_timeout:g} s"), close=True)
            return
        except ConnectionError as e:
            log(f"--- {self.peer} {e}")
            self.close_connection = True
            return
        except Reject as r:
            self._answer_reject(r, close=True)
            return
        app.stats.count(bodyBytes=len(data), headerBytes=self._header_bytes())
        if app.faults.take("drop-before-store"):
            app.stats.count(faultsApplied=1)
            log(f"--- {self.peer} fault: connection dropped before storing ({len(data)} bytes read)")
            self._abort()
            return
        what = ""
        try:
            raw = gunzip(data, o.max_inflated) if pre["gzip"] else data
            if len(raw) > o.max_inflated:
                raise Reject(413, "too_large", f"the body is over {o.max_inflated} bytes",
                             extra={"limit": o.max_inflated, "limitOf": "inflated"})
            app.stats.count(inflatedBytes=len(raw))
            if pre["probe"] and not raw:
                self._answer_probe()
                return
            b = parse_batch(decode_json(raw))
            what = f"{b.gateway} epoch={b.epoch} " + (f"seq={b.first_seq}-{b.last_seq} " if not b.probe else "")
            if pre["bound"] is not None and pre["bound"] != b.gateway:
                raise Reject(403, "forbidden", f"this token may not send for gateway '{b.gateway}'")
            if o.tenant and b.tenant != o.tenant:
                raise Reject(403, "forbidden", f"gateway '{b.gateway}' sent tenant '{b.tenant}' to the endpoint "
                                               f"of tenant '{o.tenant}'")
            if b.probe != pre["probe"]:
                raise Reject(400, "probe", "a probe body (\"probe\": true) is sent with X-Edged-Probe: 1" if b.probe
                             else "X-Edged-Probe: 1 is sent with a probe body (\"probe\": true) or no body")
            if b.probe:
                self._answer_probe()
                return
            key = self.headers.get("Idempotency-Key")
            if key is not None and key.strip() != b.idempotency_key():
                raise Reject(400, "idempotency_key", f"Idempotency-Key {_clip(key.strip())!r} does not name this "
                                                     f"batch ({b.idempotency_key()})")
            if key is None and o.require_idempotency_key:
                raise Reject(400, "idempotency_key", f"Idempotency-Key is required ({b.idempotency_key()})")
            try:
                done = app.store.ingest(b, len(data))
                stored, dups = done
            except Conflict as c:
                app.stats.count(conflicts=len(c.seqs))
                raise Reject(409, "conflict", f"{len(c.seqs)} record(s) reuse a (gateway, epoch, seq) already stored "
                                              f"with different content (first: seq {c.seqs[0]}); nothing of this "
                                              f"batch was stored", extra={"seqs": c.seqs[:100]})
            except sqlite3.Error as e:
                raise Reject(503, "storage", f"the batch could not be stored: {e}", headers={"Retry-After": "30"})
        except Reject as r:
            self._answer_reject(r, what=what)
            return
        ms = (time.monotonic() - self.t0) * 1000
        info = {"gateway": b.gateway, "epoch": b.epoch, "firstSeq": b.first_seq, "lastSeq": b.last_seq,
                "records": len(b.records), "readings": b.readings, "alarms": b.alarms, "gaps": b.gaps,
                "efm": b.efm, "efmGaps": b.efm_gaps, "schema": b.schema,
                "stored": stored, "duplicates": dups, "efmConflicts": done.efm_conflicts, "bodyBytes": len(data),
                "headerBytes": self._header_bytes(), "inflatedBytes": len(raw), "ms": round(ms, 2),
                "idempotencyKey": b.idempotency_key(), "clockSynchronized": b.clock_synchronized}
        app.stats.batch(info)
        dropped = app.faults.take("drop-response-after-store")
        log(f"{'---' if dropped else 200} {self.peer} {b.gateway} epoch={b.epoch} seq={b.first_seq}-{b.last_seq} "
            f"records={len(b.records)} bytes={len(data)} stored={stored} duplicates={dups} "
            + (f"efmConflicts={done.efm_conflicts} " if done.efm_conflicts else "") + f"{ms:.1f}ms"
            + (" (fault: response dropped after store)" if dropped else ""))
        if dropped:
            app.stats.count(faultsApplied=1)
            self._abort()
            return
        answer = {"stored": stored, "duplicates": dups}
        if done.efm_conflicts:
            answer["efmConflicts"] = done.efm_conflicts  # EFM records kept aside: their device changed them
        self._send(200, answer)

    def _abort(self):
        """Closes the connection without a response (the client sees the connection end)."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class TLSServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """Threaded HTTP/1.1 server; the TLS handshake runs in the connection's own thread."""
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr, handler, app: App, family):
        self.address_family = family
        self.app = app
        super().__init__(addr, handler)

    def server_bind(self):
        socketserver.TCPServer.server_bind(self)  # skip HTTPServer's getfqdn (slow without DNS)
        self.server_name, self.server_port = self.server_address[0], self.server_address[1]

    def process_request_thread(self, request, client_address):
        app = self.app
        if app.faults.take("refuse"):
            app.stats.count(faultsApplied=1)
            request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")  # RST on close
            request.close()
            log(f"--- {client_address[0]} fault: connection refused (reset)")
            return
        try:
            request.settimeout(app.opts.handshake_timeout)
            tls = app.ssl_ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            app.stats.count(tlsHandshakeFailures=1)
            log(f"--- {client_address[0]} TLS handshake failed: {getattr(e, 'reason', None) or e}")
            try:
                request.close()
            except OSError:
                pass
            return
        super().process_request_thread(tls, client_address)

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, ssl.SSLError, TimeoutError)):
            return  # the peer went away
        log(f"!!! {client_address[0]} internal error: {exc!r}")


# ----------------------------------------------------------------------------------------------------------
# The admin endpoint (plain HTTP, loopback only)
# ----------------------------------------------------------------------------------------------------------

class AdminHandler(http.server.BaseHTTPRequestHandler):
    """GET /stats, POST /stats/reset, GET|POST /faults, GET /seqs?gateway=G&epoch=E,
    GET /records?gateway=G&epoch=E[&after=SEQ][&limit=N],
    GET /efm/records, /efm/conflicts, /efm/gaps, /efm/counts [?gateway=G][&device=D][&kind=K][&limit=N].

    /records: {"records": [...]}, in seq order, one object per stored record: a reading
    {seq, kind: "reading", device, tag[, units], t, v, q}, an alarm event or gap {seq, kind, record}. A reading or
    alarm event whose time was taken with the gateway's clock unsynchronized (the batch's clockUnsynchronized
    ranges) also has "clockSynchronized": false; the member is absent on every other record. EFM records and gaps
    appear there as {seq, kind: "efm" | "efm-gap", record}, each seq received (a natural duplicate too).

    /efm/records: {"count": n, "records": [...]}, the first copy of each EFM record (natural identity gateway,
    device, kind, key), ordered by gateway, device, kind, deviceTime, key: {gateway, device, kind, key, hash,
    meter, contractHour, deviceTime, collectedAt, raw (base64), values + units | event, epoch, seq}.
    /efm/conflicts: {"count": n, "conflicts": [...]}, the copies kept aside: the same members plus storedHash
    (the kept record's) and receivedAt (receiver clock, UTC ms). /efm/gaps: {"count": n, "gaps": [{gateway,
    device, kind, meter, from, to, periods, notedAt, epoch, seq}]}. /efm/counts: {"records", "conflicts",
    "gaps", "byDevice": [{gateway, device, kind, records, conflicts, gaps}]}."""
    protocol_version = "HTTP/1.1"
    server_version = "wellpulse-edge-receiver-admin/1"
    sys_version = ""
    app: App

    def version_string(self):
        return self.server_version

    def log_message(self, fmt, *args):
        pass

    def _json(self, status, obj):
        data = (json.dumps(obj, indent=1) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query))
        app = self.app
        if u.path == "/stats":
            s = app.stats.snapshot()
            s["faults"] = app.faults.state()
            s["store"] = app.store.summary()
            s["inflight"] = app.inflight
            self._json(200, s)
        elif u.path == "/faults":
            self._json(200, app.faults.state())
        elif u.path in ("/seqs", "/records"):
            if "gateway" not in q or "epoch" not in q:
                return self._json(400, {"error": "gateway and epoch are required query parameters"})
            if u.path == "/seqs":
                self._json(200, app.store.seq_ranges(q["gateway"], q["epoch"]))
            else:
                try:
                    after, limit = int(q.get("after", 0)), min(int(q.get("limit", 1000)), 100000)
                except ValueError:
                    return self._json(400, {"error": "after and limit are integers"})
                self._json(200, {"records": app.store.records(q["gateway"], q["epoch"], after, limit)})
        elif u.path in ("/efm/records", "/efm/conflicts", "/efm/gaps", "/efm/counts"):
            allowed = {"gateway", "device", "kind", "limit"} if u.path != "/efm/counts" else {"gateway", "device"}
            unknown = set(q) - allowed
            if unknown:
                return self._json(400, {"error": f"{u.path} takes {', '.join(sorted(allowed))}, not "
                                                 f"{', '.join(sorted(unknown))}"})
            try:
                limit = min(int(q.get("limit", 100000)), 1000000)
            except ValueError:
                return self._json(400, {"error": "limit is an integer"})
            f = {"gateway": q.get("gateway"), "device": q.get("device")}
            st = app.store
            if u.path == "/efm/counts":
                return self._json(200, st.efm_counts(**f))
            if u.path == "/efm/gaps":
                items = st.efm_gaps(kind=q.get("kind"), limit=limit, **f)
            else:
                items = st.efm_records(kind=q.get("kind"), conflicts=u.path == "/efm/conflicts", limit=limit, **f)
            self._json(200, {"count": len(items), u.path.rpartition("/")[2]: items})
        else:
            self._json(404, {"error": "GET /stats, /faults, /seqs, /records or /efm/{records,conflicts,gaps,counts}; "
                                      "POST /faults or /stats/reset"})

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        path = urllib.parse.urlsplit(self.path).path
        if path == "/faults":
            try:
                state = self.app.faults.set(json.loads(raw or b"null"))
            except (ValueError, json.JSONDecodeError) as e:
                return self._json(400, {"error": str(e)})
            log(f"admin: faults {json.dumps(state)}")
            self._json(200, state)
        elif path == "/stats/reset":
            self.app.stats.reset()
            self._json(200, {"reset": True})
        else:
            self._json(404, {"error": "POST /faults or /stats/reset"})


# ----------------------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------------------

def parse_addr(s: str, what: str):
    host, sep, port = s.rpartition(":")
    if not sep or not port.isdigit():
        raise SystemExit(f"receiver: {what} must be HOST:PORT, got {s!r}")
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return (host, int(port)), family


def parse_size(s: str) -> int:
    m = re.fullmatch(r"(\d+)\s*(|k|kib|m|mib|kb|mb)", s.strip().lower())
    if not m:
        raise argparse.ArgumentTypeError(f"{s!r} is not a size (e.g. 1048576, 512KiB, 1MiB)")
    mult = {"": 1, "k": 1024, "kib": 1024, "m": 1 << 20, "mib": 1 << 20, "kb": 1000, "mb": 1000000}[m.group(2)]
    return int(m.group(1)) * mult


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="receiver.py", description="Reference receiver for the edged sync protocol (docs/sync-protocol.md).")
    ap.add_argument("--listen", required=True, metavar="HOST:PORT", help="HTTPS address (port 0: any free port)")
    ap.add_argument("--cert", required=True, help="server certificate chain (PEM)")
    ap.add_argument("--key", required=True, help="server private key (PEM)")
    ap.add_argument("--client-ca", help="require client certificates signed by this CA (mTLS)")
    ap.add_argument("--tokens", required=True, help="tokens file: 'token' or 'gateway-id:token' per line")
    ap.add_argument("--store", required=True, help="SQLite file for the stored records")
    ap.add_argument("--admin", metavar="HOST:PORT", help="plain-HTTP admin endpoint on loopback (faults, stats)")
    ap.add_argument("--path", default="/api/v1/edge/batches", help="batch endpoint path (default %(default)s)")
    ap.add_argument("--max-body", type=parse_size, default=1 << 20,
                    help="largest body on the wire, gzip'd (default 1MiB); larger: 413")
    ap.add_argument("--max-inflated", type=parse_size, default=16 << 20,
                    help="largest body after gunzip (default 16MiB); larger: 413")
    ap.add_argument("--max-inflight", type=int, default=32, help="batches processed at once before 503 (default 32)")
    ap.add_argument("--tenant", help="accept only batches whose gateway.tenant is this (else 403)")
    ap.add_argument("--require-idempotency-key", action="store_true", help="400 when the header is missing")
    ap.add_argument("--idle-timeout", type=float, default=90, help="seconds a connection may sit idle (default 90)")
    ap.add_argument("--handshake-timeout", type=float, default=10, help="seconds for the TLS handshake (default 10)")
    o = ap.parse_args(argv)

    addr, family = parse_addr(o.listen, "--listen")
    for opt in ("cert", "key", "client_ca", "tokens"):
        f = getattr(o, opt)
        if f is not None and not os.access(f, os.R_OK):
            print(f"receiver: --{opt.replace('_', '-')} {f}: cannot read it", file=sys.stderr)
            return 2
    try:
        tokens = Tokens(o.tokens)
        store = Store(o.store)
        app = App(o, tokens, store)
    except (OSError, ValueError, ssl.SSLError, sqlite3.Error) as e:
        print(f"receiver: {e}", file=sys.stderr)
        return 2

    class H(BatchHandler):
        pass
    H.app = app
    try:
        httpd = TLSServer(addr, H, app, family)
    except OSError as e:
        print(f"receiver: cannot listen on {o.listen}: {e.strerror or e}", file=sys.stderr)
        return 2
    servers = [httpd]
    admin_note = ""
    if o.admin:
        aaddr, afamily = parse_addr(o.admin, "--admin")
        try:
            loop = aaddr[0] == "localhost" or ipaddress.ip_address(aaddr[0]).is_loopback
        except ValueError:
            loop = False
        if not loop:
            print("receiver: --admin must be a loopback address (it has no authentication)", file=sys.stderr)
            return 2

        class A(AdminHandler):
            pass
        A.app = app

        class AdminServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True
            address_family = afamily

            def server_bind(self):
                socketserver.TCPServer.server_bind(self)
                self.server_name, self.server_port = self.server_address[0], self.server_address[1]
        try:
            adm = AdminServer(aaddr, A)
        except OSError as e:
            print(f"receiver: cannot listen on {o.admin}: {e.strerror or e}", file=sys.stderr)
            return 2
        servers.append(adm)
        admin_note = f", admin http://{_hostport(adm.server_address)}"

    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True) for s in servers]
    for t in threads:
        t.start()
    log(f"receiver: listening on https://{_hostport(httpd.server_address)}{o.path} "
        f"(TLS 1.2+, client certificates {'required' if o.client_ca else 'not requested'}){admin_note}, "
        f"store {o.store}, max body {o.max_body} bytes")
    while not stop.wait(0.5):
        pass
    log("receiver: stopping")
    app.stopping.set()
    for s in servers:
        s.shutdown()
        s.server_close()
    deadline = time.monotonic() + 10
    while app.inflight and time.monotonic() < deadline:  # let batches in progress commit and answer
        time.sleep(0.02)
    store.close()
    log("receiver: stopped")
    return 0


def _hostport(a) -> str:
    return f"[{a[0]}]:{a[1]}" if ":" in a[0] else f"{a[0]}:{a[1]}"


if __name__ == "__main__":
    sys.exit(main())
