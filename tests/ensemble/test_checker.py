#!/usr/bin/python3
"""The history checker against hand-made histories: each broken one must be caught, and the
valid ones (including concurrency and unknown outcomes) must pass.

    /usr/bin/python3 tests/ensemble/test_checker.py [-v]
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checker  # noqa: E402


class H:
    """Builds a history; times are given explicitly (invoke, complete)."""

    def __init__(self):
        self.ops = []

    def add(self, f, key, t0, t1, type="ok", proc="p1", session="s1", arg=None, result=None,
            hzxid=None):
        op = {"id": len(self.ops), "proc": proc, "session": session if type == "ok" else None,
              "f": f, "key": key, "arg": arg or {}, "invoke": t0,
              "complete": None if type == "unknown" else t1, "type": type,
              "result": result or {}, "hzxid": hzxid}
        self.ops.append(op)
        return op

    def set(self, key, value, t0, t1, version=None, mzxid=None, type="ok", **kw):
        return self.add("set", key, t0, t1, type, arg={"value": value},
                        result={"version": version, "mzxid": mzxid} if type == "ok" else None,
                        **kw)

    def cas(self, key, expected, value, t0, t1, type="ok", mzxid=None, **kw):
        return self.add("cas", key, t0, t1, type, arg={"value": value, "expected": expected},
                        result={"version": expected + 1, "mzxid": mzxid} if type == "ok"
                        else None, **kw)

    def read(self, key, value, version, mzxid, t0, t1, **kw):
        return self.add("read", key, t0, t1, "ok",
                        result={"value": value, "version": version, "mzxid": mzxid}, **kw)

    def final(self, key, value, version, mzxid, t, member=1):
        return self.add("final", key, t, t + 0.01, "ok", proc="final-m%d" % member,
                        session=None, result={"value": value, "version": version,
                                              "mzxid": mzxid, "member": member})


class Registers(unittest.TestCase):
    def check(self, h, lin=False):
        return checker.check_registers(h.ops, linearizable=lin) + checker.check_sessions(h.ops)

    def test_sequential_history_passes(self):
        h = H()
        h.set("r", "a", 0, 1, version=1, mzxid=10)
        h.read("r", "a", 1, 10, 2, 3)
        h.cas("r", 1, "b", 4, 5, mzxid=11)
        h.cas("r", 1, "c", 6, 7, type="fail")
        h.final("r", "b", 2, 11, 10)
        self.assertEqual(self.check(h, lin=True), [])

    def test_concurrent_writes_in_either_order_pass(self):
        h = H()
        # overlapping: b got version 1, a version 2, although a was invoked first
        h.set("r", "a", 0, 5, version=2, mzxid=12, proc="p1", session="s1")
        h.set("r", "b", 1, 4, version=1, mzxid=11, proc="p2", session="s2")
        h.final("r", "a", 2, 12, 10)
        self.assertEqual(self.check(h), [])

    def test_unknown_write_may_take_effect(self):
        h = H()
        h.set("r", "a", 0, None, type="unknown")
        h.set("r", "b", 2, 3, version=2, mzxid=12, proc="p2", session="s2")
        h.final("r", "b", 2, 12, 10)
        self.assertEqual(self.check(h), [])

    def test_unknown_write_may_take_effect_late(self):
        h = H()
        h.set("r", "a", 0, None, type="unknown")
        h.set("r", "b", 2, 3, version=1, mzxid=11, proc="p2", session="s2")
        h.final("r", "a", 2, 12, 10)  # a applied after b completed
        self.assertEqual(self.check(h), [])

    def test_unknown_write_may_not_take_effect(self):
        h = H()
        h.set("r", "a", 0, None, type="unknown")
        h.set("r", "b", 2, 3, version=1, mzxid=11, proc="p2", session="s2")
        h.final("r", "b", 1, 11, 10)
        self.assertEqual(self.check(h), [])

    def test_lost_write_fails(self):
        h = H()
        h.set("r", "a", 0, 1, version=1, mzxid=10)
        h.final("r", "init", 0, 1, 10)  # the acknowledged write is gone
        errs = self.check(h)
        self.assertTrue(any("no linearization" in e for e in errs), errs)

    def test_lost_write_on_one_member_fails(self):
        h = H()
        h.set("r", "a", 0, 1, version=1, mzxid=10)
        h.set("r", "b", 2, 3, version=2, mzxid=11)
        h.final("r", "b", 2, 11, 10, member=1)
        h.final("r", "a", 1, 10, 10.1, member=2)
        errs = self.check(h)
        self.assertTrue(any("different states" in e for e in errs), errs)

    def test_two_values_for_one_version_fails(self):
        h = H()
        h.set("r", "a", 0, 1, version=1, mzxid=10, proc="p1", session="s1")
        h.read("r", "b", 1, 10, 2, 3, proc="p2", session="s2")
        h.set("r", "b", 0.5, None, type="unknown", proc="p3")
        errs = self.check(h)
        self.assertTrue(any("two values for version 1" in e for e in errs), errs)

    def test_two_leaders_acknowledging_the_same_version_fails(self):
        h = H()
        h.set("r", "a", 0, 1, version=1, mzxid=10, proc="p1", session="s1")
        h.set("r", "b", 0, 1, version=1, mzxid=0x100000001, proc="p2", session="s2")
        errs = self.check(h)
        self.assertTrue(any("two values for version 1" in e for e in errs), errs)
        self.assertTrue(any("no linearization" in e for e in errs), errs)

    def test_write_ordered_against_real_time_fails(self):
        h = H()
        h.set("r", "a", 0, 1, version=2, mzxid=12)  # completes before b is invoked...
        h.set("r", "b", 2, 3, version=1, mzxid=11, proc="p2", session="s2")  # ...yet is later
        errs = self.check(h)
        self.assertTrue(any("no linearization" in e for e in errs), errs)

    def test_cas_success_on_wrong_version_fails(self):
        h = H()
        h.set("r", "a", 0, 1, version=1, mzxid=10)
        h.cas("r", 0, "b", 2, 3, mzxid=11)  # expected version 0 but the register is at 1
        errs = self.check(h)
        self.assertTrue(any("no linearization" in e for e in errs), errs)

    def test_cas_failure_when_it_should_have_succeeded_fails(self):
        h = H()
        h.set("r", "a", 0, 1, version=1, mzxid=10)
        h.cas("r", 1, "b", 2, 3, type="fail")  # nothing else wrote: BadVersion is wrong
        errs = self.check(h)
        self.assertTrue(any("no linearization" in e for e in errs), errs)

    def test_read_of_failed_write_fails(self):
        h = H()
        h.cas("r", 5, "x", 0, 1, type="fail")
        h.read("r", "x", 1, 10, 2, 3, proc="p2", session="s2")
        errs = self.check(h)
        self.assertTrue(any("no (not failed) write wrote" in e for e in errs), errs)

    def test_read_from_the_future_fails(self):
        h = H()
        h.read("r", "x", 1, 10, 0, 1, proc="p2", session="s2")
        h.set("r", "x", 2, 3, version=1, mzxid=10)
        errs = self.check(h)
        self.assertTrue(any("before its write was invoked" in e for e in errs), errs)


class Sessions(unittest.TestCase):
    def test_stale_read_after_own_write_fails(self):
        h = H()
        h.set("r", "a", 0, 1, version=1, mzxid=10, session="s1")
        h.read("r", "init", 0, 1, 2, 3, session="s1")  # does not read its own write
        errs = checker.check_sessions(h.ops)
        self.assertTrue(any("stale" in e for e in errs), errs)

    def test_stale_read_after_seeing_newer_state_fails(self):
        h = H()
        h.set("r", "a", 0, 1, version=1, mzxid=10, proc="w", session="w")
        h.set("r", "b", 1, 2, version=2, mzxid=11, proc="w", session="w")
        h.read("r", "b", 2, 11, 3, 4, proc="p2", session="s2")
        h.read("r", "a", 1, 10, 5, 6, proc="p2", session="s2")  # goes back in time
        errs = checker.check_sessions(h.ops)
        self.assertTrue(any("stale" in e for e in errs), errs)

    def test_stale_read_across_keys_fails(self):
        h = H()
        h.set("q", "a", 0, 1, version=1, mzxid=10, proc="w", session="w")
        h.set("r", "b", 1, 2, version=1, mzxid=11, proc="w", session="w")
        h.read("r", "b", 1, 11, 3, 4, proc="p2", session="s2")  # has seen zxid 11
        h.read("q", "init", 0, 1, 5, 6, proc="p2", session="s2")  # but not 10
        errs = checker.check_sessions(h.ops)
        self.assertTrue(any("stale" in e for e in errs), errs)

    def test_stale_read_of_another_session_is_allowed_without_linearizable_reads(self):
        h = H()
        h.set("r", "a", 0, 1, version=1, mzxid=10, proc="w", session="w")
        h.read("r", "init", 0, 1, 2, 3, proc="p2", session="s2")  # a lagging member: allowed
        self.assertEqual(checker.check_sessions(h.ops) + checker.check_registers(h.ops), [])
        errs = checker.check_registers(h.ops, linearizable=True)
        self.assertTrue(any("no linearization" in e for e in errs), errs)

    def test_reply_zxid_going_back_fails(self):
        h = H()
        h.read("r", "init", 0, 1, 0, 1, hzxid=20)
        h.read("r", "init", 0, 1, 2, 3, hzxid=15)
        errs = checker.check_sessions(h.ops)
        self.assertTrue(any("went back" in e for e in errs), errs)


class Creates(unittest.TestCase):
    def test_acknowledged_create_missing_fails(self):
        h = H()
        h.add("create", "/c/a", 0, 1, "ok", result={"czxid": 10})
        h.add("create", "/c/b", 0, None, "unknown")
        errs = checker.check_creates(h.ops, {1: {"/c/a"}, 2: set()})
        self.assertTrue(any("missing on m2" in e for e in errs), errs)
        self.assertTrue(any("list different" in e for e in errs), errs)
        self.assertEqual(checker.check_creates(h.ops, {1: {"/c/a", "/c/b"},
                                                       2: {"/c/a", "/c/b"}}), [])

    def test_sequence_numbers(self):
        h = H()
        h.add("seq", "/s/n-", 0, 1, "ok", result={"path": "/s/n-0000000001", "czxid": 10})
        h.add("seq", "/s/n-", 2, 3, "ok", result={"path": "/s/n-0000000000", "czxid": 11})
        errs = checker.check_creates(h.ops, {1: {"/s/n-0000000000", "/s/n-0000000001"}})
        self.assertTrue(any("not above" in e for e in errs), errs)
        h = H()
        h.add("seq", "/s/n-", 0, 1, "ok", result={"path": "/s/n-0000000001", "czxid": 10})
        h.add("seq", "/s/n-", 2, 3, "ok", result={"path": "/s/n-0000000001", "czxid": 11})
        errs = checker.check_creates(h.ops, {1: {"/s/n-0000000001"}})
        self.assertTrue(any("returned to 2" in e for e in errs), errs)
        h = H()
        h.add("seq", "/s/n-", 0, 1, "ok", result={"path": "/s/n-0000000000", "czxid": 10})
        errs = checker.check_creates(h.ops, {1: {"/s/n-0000000000", "/s/n-0000000001"}})
        self.assertTrue(any("no create acknowledged" in e for e in errs), errs)


class Scale(unittest.TestCase):
    def test_long_concurrent_history_with_unknowns_is_decided_fast(self):
        import random
        import time
        rnd = random.Random(7)
        h = H()
        t = 0.0
        version = 0
        # 4 writers overlapping pairwise, every 25th write's outcome unknown (half applied)
        for k in range(1500):
            t += 0.001
            if k % 25 == 0:
                applied = rnd.random() < 0.5
                h.set("r", "u%d" % k, t, None, type="unknown", proc="p%d" % (k % 4))
                if applied:
                    version += 1
                continue
            version += 1
            h.set("r", "v%d" % k, t, t + 0.0015, version=version, mzxid=version,
                  proc="p%d" % (k % 4), session="s%d" % (k % 4))
        good = list(h.ops)
        h.final("r", "v1499", version, version, t + 1)
        start = time.monotonic()
        self.assertEqual(checker.check_registers(h.ops), [])
        self.assertLess(time.monotonic() - start, 5)
        # the same history where the last acknowledged write is lost must fail, also fast
        h.ops = good
        h.final("r", "v1498", version - 1, version - 1, t + 1)
        start = time.monotonic()
        errs = checker.check_registers(h.ops)
        self.assertTrue(any("no linearization" in e for e in errs), errs)
        self.assertLess(time.monotonic() - start, 5)


if __name__ == "__main__":
    unittest.main()
