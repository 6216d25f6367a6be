#!/usr/bin/python3
"""Checks a recorded client history (history.py) against ZooKeeper's guarantees.

An op is a dict:
    id, proc (worker), session (hex session id, for ok ops), f, key, arg, invoke, complete,
    type ("ok" | "fail" | "unknown"), result (dict), hzxid (the reply header's zxid, ok ops)
  f = "set"   arg {"value"}                      ok result {"version", "mzxid"}
      "cas"   arg {"value", "expected"}          ok result {"version", "mzxid"}; fail = BadVersion
      "read"  arg {}                             ok result {"value", "version", "mzxid"}
      "final" like read; issued on each member alone after the load stopped and the ensemble
              converged (result also has "member")
      "create" key = the unique path             ok result {"czxid"}; fail = definite error
      "seq"   key = the parent prefix            ok result {"path", "czxid"}
  "unknown": timeout or connection loss: the op may have taken effect, or not, at any time after
  its invocation. Reads and finals that did not return ok are ignored.

Checks (each returns a list of violation strings; [] = passed):
  check_registers   per znode (register with versioned CAS): one value and one mzxid per
                    version, mzxids growing with versions; linearizability of the writes (set,
                    cas, final reads; and every read when linearizable=True) by a WGL search
                    where unknown ops may take effect at any point after their invocation or
                    never; final reads equal on every member.
  check_sessions    per session: never reads state older than it has seen (a write with a
                    zxid it already observed is not visible), reads its own writes, reply zxids
                    never go backwards.
  check_creates     acknowledged creates present on every member, failed ones absent, members
                    agree; sequence numbers unique and in real-time order.
"""

import collections
import json
import math
import sys
import time

INF = math.inf


def load(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def _fmt(op):
    r = op.get("result") or {}
    return "#%s %s %s %s %s %s [%.3f, %s]" % (
        op["id"], op["proc"], op["f"], op["key"], json.dumps(op.get("arg", {}), sort_keys=True),
        op["type"] + (" " + json.dumps(r, sort_keys=True) if r else ""), op["invoke"],
        "%.3f" % op["complete"] if op.get("complete") is not None else "-")


# ---- registers ---------------------------------------------------------------------------

def _register_ops(history, key, linearizable):
    ops = []
    for op in history:
        if op["key"] != key or op["f"] not in ("set", "cas", "read", "final"):
            continue
        if op["f"] in ("read", "final"):
            if op["type"] != "ok" or (op["f"] == "read" and not linearizable):
                continue
        ops.append(op)
    return ops


def _step(op, state):
    """The state after `op` taking effect in `state`, or None if it cannot happen there."""
    value, version = state
    f, t, r, a = op["f"], op["type"], op.get("result") or {}, op.get("arg") or {}
    if f in ("read", "final"):
        return state if (r["value"], r["version"]) == (value, version) else None
    if f == "set":
        if t == "ok":
            return (a["value"], version + 1) if r["version"] == version + 1 else None
        return (a["value"], version + 1)  # unknown: took effect here
    if f == "cas":
        if t == "fail":
            return state if version != a["expected"] else None
        if version != a["expected"]:
            return None
        if t == "ok" and r.get("version", version + 1) != version + 1:
            return None
        return (a["value"], version + 1)
    raise ValueError(f)


def wgl(ops, init, budget=2_000_000, time_limit=120.0):
    """Lowe's WGL search for a linearization of `ops` (register with versioned CAS) from state
    `init`. Ops of type unknown have no return (they may be linearized at any point after their
    invocation, or never); every other op must be linearized between its invocation and its
    completion. Returns (True, None) or (False, explanation).

    Definite ops are indexed by invocation (bit i of `done`) and by completion (bit of
    `done_r`), so the next completion bound and the first candidate are lowest zero bits.
    Unknown writes whose value nobody read are interchangeable within their kind (set, or CAS
    on one expected version) except for their invocation times: a linearization that uses a
    later one can use the earliest pending one instead, so per kind only a count is kept."""
    read_values = {op["result"]["value"] for op in ops if op["f"] in ("read", "final")}
    dops = sorted((op for op in ops if op["type"] != "unknown"), key=lambda o: o["invoke"])
    m = len(dops)
    inv = [op["invoke"] for op in dops]
    ret = [op["complete"] for op in dops]
    ret_order = sorted(range(m), key=lambda i: ret[i])
    ret_rank = [0] * m
    for r, i in enumerate(ret_order):
        ret_rank[i] = r
    groups = {}
    loose = []  # unknown ops whose value was read: tracked one by one
    for op in sorted((op for op in ops if op["type"] == "unknown"), key=lambda o: o["invoke"]):
        if op["arg"]["value"] in read_values:
            loose.append(op)
        else:
            key = ("set",) if op["f"] == "set" else ("cas", op["arg"]["expected"])
            groups.setdefault(key, []).append(op)
    gkeys = sorted(groups)
    glists = [groups[k] for k in gkeys]
    full = (1 << m) - 1

    def low0(x):
        return (~x & (x + 1)).bit_length() - 1

    seen = set()
    give_up = time.monotonic() + time_limit
    start = (0, 0, (0,) * len(glists), 0, init)
    stack = [start]
    best = (-1, start)
    visited = 0
    while stack:
        item = stack.pop()
        done, done_r, gcnt, lmask, state = item
        if done == full:
            return True, None
        key = (done, gcnt, lmask, state)
        if key in seen:
            continue
        seen.add(key)
        visited += 1
        if visited > budget or (visited % 4096 == 0 and time.monotonic() > give_up):
            return False, "search budget exhausted after %d states (undecided)" % visited
        cnt = bin(done).count("1")
        if cnt > best[0]:
            best = (cnt, item)
        j = low0(done_r)
        horizon = ret[ret_order[j]] if j < m else INF
        definite_next, unknown_next = [], []
        i = low0(done)
        while i < m and inv[i] <= horizon:
            if not done >> i & 1:
                nxt = _step(dops[i], state)
                if nxt is not None:
                    definite_next.append((done | 1 << i, done_r | 1 << ret_rank[i], gcnt,
                                          lmask, nxt))
            i += 1
        for g, lst in enumerate(glists):
            c = gcnt[g]
            if c < len(lst) and lst[c]["invoke"] <= horizon:
                nxt = _step(lst[c], state)
                if nxt is not None:
                    unknown_next.append((done, done_r, gcnt[:g] + (c + 1,) + gcnt[g + 1:],
                                         lmask, nxt))
        for k, op in enumerate(loose):
            if not lmask >> k & 1 and op["invoke"] <= horizon:
                nxt = _step(op, state)
                if nxt is not None:
                    unknown_next.append((done, done_r, gcnt, lmask | 1 << k, nxt))
        # definite ops are tried first (popped first), unknown ones only after them
        stack.extend(reversed(unknown_next))
        stack.extend(reversed(definite_next))
    cnt, (done, done_r, gcnt, lmask, state) = best
    j = low0(done_r)
    horizon = ret[ret_order[j]] if j < m else INF
    pending = [dops[i] for i in range(m) if not done >> i & 1 and inv[i] <= horizon]
    lines = ["no linearization: at most %d of %d acknowledged/failed ops could be ordered; after"
             " them the register is (value=%r, version=%d) and none of these can go next:"
             % (cnt, m, state[0], state[1])]
    lines += ["    " + _fmt(op) for op in pending[:12]]
    return False, "\n".join(lines)


def check_registers(history, init=None, linearizable=False):
    """init: {key: (value, version)} before the history (default ("init", 0))."""
    errors = []
    keys = sorted({op["key"] for op in history if op["f"] in ("set", "cas", "read", "final")})
    for key in keys:
        # one value and one mzxid per version
        chain = {}
        for op in history:
            if op["key"] != key or op["type"] != "ok" or op["f"] not in ("set", "cas", "read",
                                                                          "final"):
                continue
            r = op["result"]
            val = r["value"] if op["f"] in ("read", "final") else op["arg"]["value"]
            obs = (val, r.get("mzxid"))
            v = r["version"]
            if v in chain and chain[v][0][0] != val:
                errors.append("%s: two values for version %d: %r (%s) and %r (%s)" % (
                    key, v, chain[v][0][0], _fmt(chain[v][1]), val, _fmt(op)))
            elif v in chain and None not in (obs[1], chain[v][0][1]) and chain[v][0][1] != obs[1]:
                errors.append("%s: two mzxids for version %d: 0x%x and 0x%x (%s)" % (
                    key, v, chain[v][0][1], obs[1], _fmt(op)))
            else:
                chain.setdefault(v, (obs, op))
        vs = sorted(v for v in chain if chain[v][0][1] is not None)
        for a, b in zip(vs, vs[1:]):
            if chain[a][0][1] >= chain[b][0][1]:
                errors.append("%s: version %d has mzxid 0x%x, not below version %d's 0x%x" % (
                    key, a, chain[a][0][1], b, chain[b][0][1]))
        # a read returns a value some write that had been invoked wrote (or the initial one)
        written = {}
        for op in history:
            if op["key"] == key and op["f"] in ("set", "cas") and op["type"] != "fail":
                written[op["arg"]["value"]] = op
        start = (init or {}).get(key, ("init", 0))
        for op in history:
            if op["key"] != key or op["f"] not in ("read", "final") or op["type"] != "ok":
                continue
            val = op["result"]["value"]
            if val == start[0]:
                continue
            w = written.get(val)
            if w is None:
                errors.append("%s: read a value no (not failed) write wrote: %s" % (key,
                                                                                  _fmt(op)))
            elif w["invoke"] > op["complete"]:
                errors.append("%s: read a value before its write was invoked: %s (write %s)" %
                              (key, _fmt(op), _fmt(w)))
        # final reads agree
        finals = [op for op in history if op["key"] == key and op["f"] == "final"
                  and op["type"] == "ok"]
        states = {(op["result"]["value"], op["result"]["version"]) for op in finals}
        if len(states) > 1:
            errors.append("%s: members end with different states: %s" % (
                key, "; ".join("m%s=%r" % (op["result"].get("member"),
                                           (op["result"]["value"], op["result"]["version"]))
                               for op in finals)))
        ok, why = wgl(_register_ops(history, key, linearizable), start)
        if not ok:
            errors.append("%s: %s" % (key, why))
    return errors


# ---- sessions ----------------------------------------------------------------------------

def check_sessions(history):
    errors = []
    # every known (version -> mzxid) of every register, from any observation
    known = collections.defaultdict(dict)
    for op in history:
        if op["type"] == "ok" and op["f"] in ("set", "cas", "read", "final"):
            r = op["result"]
            if r.get("mzxid") is not None:
                known[op["key"]][r["version"]] = r["mzxid"]
    sessions = collections.defaultdict(list)
    for op in history:
        if op["type"] == "ok" and op.get("session") and op["f"] != "final":
            sessions[op["session"]].append(op)
    for sid, ops in sessions.items():
        ops.sort(key=lambda o: o["invoke"])
        seen = 0
        seen_by = None
        last_h = 0
        last_h_op = None
        for op in ops:
            r = op["result"]
            if op["f"] == "read":
                zr, vr = r["mzxid"], r["version"]
                newer = [(v, z) for v, z in known[op["key"]].items() if v > vr and z <= seen]
                if newer:
                    v, z = min(newer)
                    errors.append("session %s read stale state of %s: version %d (mzxid 0x%x) "
                                  "after it had seen zxid 0x%x (%s), which is at or after version"
                                  " %d (mzxid 0x%x): %s" % (sid, op["key"], vr, zr, seen,
                                                            _fmt(seen_by), v, z, _fmt(op)))
            z = r.get("mzxid") or r.get("czxid") or 0
            if z > seen:
                seen, seen_by = z, op
            h = op.get("hzxid") or 0
            if h:
                if h < last_h:
                    errors.append("session %s: reply zxid went back from 0x%x (%s) to 0x%x (%s)"
                                  % (sid, last_h, _fmt(last_h_op), h, _fmt(op)))
                if z > h:
                    errors.append("session %s: reply zxid 0x%x below the zxid 0x%x it reports:"
                                  " %s" % (sid, h, z, _fmt(op)))
                last_h, last_h_op = max(h, last_h), op
                if h > seen:
                    seen, seen_by = h, op
    return errors


# ---- creates -----------------------------------------------------------------------------

def check_creates(history, listings):
    """listings: {member: set of paths present under the create and seq parents}."""
    errors = []
    members = sorted(listings)
    ref = None
    for m in members:
        if ref is None:
            ref = (m, listings[m])
        elif listings[m] != ref[1]:
            a, b = ref[1] - listings[m], listings[m] - ref[1]
            errors.append("members m%s and m%s list different nodes: only on m%s: %s; only on "
                          "m%s: %s" % (ref[0], m, ref[0], sorted(a)[:5], m, sorted(b)[:5]))
    unknown_seq = collections.Counter()
    ok_seq = []
    for op in history:
        if op["f"] == "create":
            for m in members:
                present = op["key"] in listings[m]
                if op["type"] == "ok" and not present:
                    errors.append("acknowledged create missing on m%s: %s" % (m, _fmt(op)))
                if op["type"] == "fail" and present:
                    errors.append("failed create present on m%s: %s" % (m, _fmt(op)))
        elif op["f"] == "seq":
            if op["type"] == "ok":
                ok_seq.append(op)
                for m in members:
                    if op["result"]["path"] not in listings[m]:
                        errors.append("acknowledged sequential create missing on m%s: %s" % (
                            m, _fmt(op)))
            elif op["type"] == "unknown":
                unknown_seq[op["key"]] += 1
    by_path = collections.defaultdict(list)
    for op in ok_seq:
        by_path[op["result"]["path"]].append(op)
    for p, ops in by_path.items():
        if len(ops) > 1:
            errors.append("sequential path %s returned to %d creates: %s" % (
                p, len(ops), "; ".join(map(_fmt, ops))))
    for prefix in {op["key"] for op in history if op["f"] == "seq"}:
        ops = sorted((op for op in ok_seq if op["key"] == prefix), key=lambda o: o["invoke"])
        num = lambda o: int(o["result"]["path"][len(prefix):])
        # real-time order: a create that completed before another was invoked has a lower number
        done_max = None
        events = sorted([(o["complete"], 1, o) for o in ops] + [(o["invoke"], 0, o) for o in ops],
                        key=lambda e: (e[0], e[1]))
        for t, kind, o in events:
            if kind == 1:
                if done_max is None or num(o) > num(done_max):
                    done_max = o
            elif done_max is not None and num(o) <= num(done_max):
                errors.append("sequence number of %s is not above that of %s, which completed "
                              "before it was invoked" % (_fmt(o), _fmt(done_max)))
        for m in members:
            extra = {p for p in listings[m] if p.startswith(prefix)} - set(by_path)
            if len(extra) > unknown_seq[prefix]:
                errors.append("m%s has %d sequential nodes under %s no create acknowledged, but "
                              "only %d had an unknown outcome" % (m, len(extra), prefix,
                                                                  unknown_seq[prefix]))
    return errors


def check_all(history, listings=None, init=None, linearizable=False):
    errs = check_registers(history, init, linearizable) + check_sessions(history)
    if listings is not None:
        errs += check_creates(history, listings)
    return errs


def main(argv):
    import argparse
    p = argparse.ArgumentParser(description="check a history file (JSON lines)")
    p.add_argument("history")
    p.add_argument("--linearizable", action="store_true")
    p.add_argument("--listings", help="JSON {member: [paths]}")
    a = p.parse_args(argv)
    h = load(a.history)
    listings = None
    if a.listings:
        with open(a.listings) as f:
            listings = {k: set(v) for k, v in json.load(f).items()}
    errs = check_all(h, listings, linearizable=a.linearizable)
    for e in errs:
        print(e)
    print("%d ops, %d violations" % (len(h), len(errs)))
    return 1 if errs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
