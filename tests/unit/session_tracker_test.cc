#include "daemon/service/session_tracker.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>
#include <vector>

#include "daemon/tree/types.h"

namespace qfs::service {
namespace {

constexpr int64_t kTick = 2000;

TEST(SessionTrackerTest, RoundUpIsTheNextTickStrictlyAfter) {
  SessionTracker t(kTick, 1, 0);
  EXPECT_EQ(t.RoundUp(0), 2000);
  EXPECT_EQ(t.RoundUp(1), 2000);
  EXPECT_EQ(t.RoundUp(1999), 2000);
  EXPECT_EQ(t.RoundUp(2000), 4000);  // a boundary goes to the next one, as ExpiryQueue
  EXPECT_EQ(t.RoundUp(2001), 4000);
  EXPECT_EQ(t.RoundUp(-1), 0);
}

TEST(SessionTrackerTest, TrackSetsRoundedDeadline) {
  SessionTracker t(kTick, 1, 0);
  t.Track(7, 5000, 1000);  // 6000 -> 8000
  EXPECT_TRUE(t.Contains(7));
  EXPECT_EQ(t.Deadline(7), 8000);
  t.Track(7, 5000, 3500);  // tracking again moves it: 8500 -> 10000
  EXPECT_EQ(t.Deadline(7), 10000);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(t.NextDeadline(), 10000);
}

TEST(SessionTrackerTest, TouchMovesOnlyTrackedSessions) {
  SessionTracker t(kTick, 1, 0);
  EXPECT_FALSE(t.Touch(9, 4000, 0));
  EXPECT_FALSE(t.Contains(9));
  EXPECT_EQ(t.Deadline(9), std::nullopt);
  t.Track(9, 4000, 0);  // 4000 -> 6000
  EXPECT_EQ(t.Deadline(9), 6000);
  EXPECT_TRUE(t.Touch(9, 4000, 2500));  // 6500 -> 8000
  EXPECT_EQ(t.Deadline(9), 8000);
  EXPECT_TRUE(t.Touch(9, 4000, 2600));  // same bucket
  EXPECT_EQ(t.Deadline(9), 8000);
  EXPECT_TRUE(t.Touch(9, 1000, 2600));  // a shorter timeout can move it earlier
  EXPECT_EQ(t.Deadline(9), 4000);
  EXPECT_EQ(t.PopExpired(7999), std::vector<int64_t>{9});
}

TEST(SessionTrackerTest, PopExpiredOrderAndBoundary) {
  SessionTracker t(kTick, 1, 0);
  t.Track(30, 5000, 0);  // 6000
  t.Track(20, 1000, 0);  // 2000
  t.Track(10, 5000, 0);  // 6000
  t.Track(40, 3000, 0);  // 4000
  t.Track(5, 9000, 0);   // 10000
  EXPECT_EQ(t.NextDeadline(), 2000);
  EXPECT_TRUE(t.PopExpired(1999).empty());
  EXPECT_EQ(t.PopExpired(2000), std::vector<int64_t>{20});  // due at the boundary itself
  EXPECT_FALSE(t.Contains(20));
  EXPECT_EQ(t.PopExpired(7000), (std::vector<int64_t>{40, 10, 30}));
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(t.NextDeadline(), 10000);
  EXPECT_TRUE(t.PopExpired(9999).empty());
  EXPECT_EQ(t.PopExpired(100000), std::vector<int64_t>{5});
  EXPECT_EQ(t.NextDeadline(), std::nullopt);
  EXPECT_EQ(t.size(), 0u);
}

TEST(SessionTrackerTest, TouchKeepsASessionAlive) {
  SessionTracker t(kTick, 1, 0);
  t.Track(1, 4000, 0);
  t.Track(2, 4000, 0);
  for (int64_t now = 1000; now <= 20000; now += 1000) {
    ASSERT_TRUE(t.Touch(1, 4000, now));
    std::vector<int64_t> expired = t.PopExpired(now);
    if (now < 6000) {
      EXPECT_TRUE(expired.empty()) << now;
    } else if (now == 6000) {
      EXPECT_EQ(expired, std::vector<int64_t>{2});
    }
  }
  EXPECT_TRUE(t.Contains(1));
  EXPECT_FALSE(t.Contains(2));
}

TEST(SessionTrackerTest, ExpiredSessionCannotBeTouchedBack) {
  SessionTracker t(kTick, 1, 0);
  t.Track(3, 2000, 0);
  EXPECT_EQ(t.PopExpired(4000), std::vector<int64_t>{3});
  EXPECT_FALSE(t.Touch(3, 2000, 4000));
  EXPECT_FALSE(t.Contains(3));
  EXPECT_TRUE(t.PopExpired(1000000).empty());
}

TEST(SessionTrackerTest, Remove) {
  SessionTracker t(kTick, 1, 0);
  t.Track(3, 2000, 0);
  t.Track(4, 2000, 0);
  EXPECT_TRUE(t.Remove(3));
  EXPECT_FALSE(t.Remove(3));
  EXPECT_FALSE(t.Contains(3));
  EXPECT_FALSE(t.Touch(3, 2000, 0));
  EXPECT_EQ(t.PopExpired(100000), std::vector<int64_t>{4});
}

TEST(SessionIdTest, InitialIdLayout) {
  const int64_t now = 0x123456789A;
  EXPECT_EQ(SessionTracker::InitialSessionId(1, now), 0x01123456789A0000);
  EXPECT_EQ(SessionTracker::InitialSessionId(0, now), 0x00123456789A0000);
  // Only the low 40 bits of the time are kept.
  EXPECT_EQ(SessionTracker::InitialSessionId(2, 0x7F00123456789A), 0x02123456789A0000);
  // Server 254 sets the sign bit, as in ZooKeeper.
  EXPECT_EQ(static_cast<uint64_t>(SessionTracker::InitialSessionId(254, now)),
            0xFE123456789A0000ull);
}

TEST(SessionIdTest, SkipsZeroAndContainerOwner) {
  EXPECT_EQ(SessionTracker::InitialSessionId(0, 0), 1);
  EXPECT_EQ(SessionTracker::InitialSessionId(128, 0), tree::kContainerOwner + 1);
  SessionTracker t(kTick, 0, 0);
  EXPECT_EQ(t.NextSessionId(), 1);
  EXPECT_EQ(t.NextSessionId(), 2);
}

TEST(SessionIdTest, CounterIsUniqueAndDisjointAcrossServers) {
  const int64_t now = 1700000000000;
  SessionTracker a(kTick, 1, now), b(kTick, 2, now);
  std::set<int64_t> seen;
  int64_t first = a.NextSessionId();
  EXPECT_EQ(first, SessionTracker::InitialSessionId(1, now));
  seen.insert(first);
  for (int i = 0; i < 999; ++i) EXPECT_TRUE(seen.insert(a.NextSessionId()).second);
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(seen.insert(b.NextSessionId()).second);
  for (int64_t id : seen) EXPECT_TRUE(tree::IsSessionOwner(id)) << id;
  // A restart a millisecond later starts past the old range's first 65536 ids.
  SessionTracker a2(kTick, 1, now + 1);
  EXPECT_EQ(a2.NextSessionId() - first, 65536);
}

TEST(SessionIdTest, ConcurrentIdsAreDistinct) {
  SessionTracker t(kTick, 3, 1700000000000);
  std::vector<std::vector<int64_t>> got(4);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&t, &got, i] {
      for (int j = 0; j < 2000; ++j) got[i].push_back(t.NextSessionId());
    });
  }
  for (auto& th : threads) th.join();
  std::set<int64_t> all;
  for (const auto& v : got) all.insert(v.begin(), v.end());
  EXPECT_EQ(all.size(), 8000u);
}

TEST(PasswordTest, DeterministicSixteenBytes) {
  std::string p = SessionTracker::Password(0x1234, 0xB3415C00);
  ASSERT_EQ(p.size(), 16u);
  EXPECT_EQ(p, SessionTracker::Password(0x1234, 0xB3415C00));
  // First 16 bytes of HMAC-SHA1(key = 00000000b3415c00, msg = 0000000000001234), from
  // python3 hmac.
  const unsigned char want[16] = {0xcc, 0x33, 0x20, 0x45, 0x72, 0xf7, 0x7d, 0xad,
                                  0x16, 0xfd, 0x4f, 0x0c, 0x74, 0xd1, 0xc0, 0x13};
  EXPECT_EQ(p, std::string(reinterpret_cast<const char*>(want), 16));
  EXPECT_NE(p, SessionTracker::Password(0x1235, 0xB3415C00));
  EXPECT_NE(p, SessionTracker::Password(0x1234, 0xB3415C01));
}

TEST(PasswordTest, Check) {
  const uint64_t secret = 0x0123456789abcdefull;
  const int64_t id = SessionTracker::InitialSessionId(5, 1700000000000);
  std::string p = SessionTracker::Password(id, secret);
  EXPECT_TRUE(SessionTracker::CheckPassword(id, secret, p));
  EXPECT_FALSE(SessionTracker::CheckPassword(id + 1, secret, p));
  EXPECT_FALSE(SessionTracker::CheckPassword(id, secret + 1, p));
  for (size_t i = 0; i < p.size(); ++i) {
    std::string bad = p;
    bad[i] = static_cast<char>(bad[i] ^ 1);
    EXPECT_FALSE(SessionTracker::CheckPassword(id, secret, bad)) << i;
  }
  EXPECT_FALSE(SessionTracker::CheckPassword(id, secret, p.substr(0, 15)));
  EXPECT_FALSE(SessionTracker::CheckPassword(id, secret, p + "x"));
  EXPECT_FALSE(SessionTracker::CheckPassword(id, secret, ""));
  EXPECT_FALSE(SessionTracker::CheckPassword(id, secret, std::string(16, '\0')));
  // Session 0 never checks, whatever the bytes (ZooKeeper's checkPasswd).
  EXPECT_FALSE(SessionTracker::CheckPassword(0, secret, SessionTracker::Password(0, secret)));
}

}  // namespace
}  // namespace qfs::service
