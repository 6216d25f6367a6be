// Counts the daemon's heap allocations (operator new, which Protobuf, Asio and the standard
// containers all use) for mntr's qfs_allocations: the bench divides its growth by the ops
// measured (docs/four-letter-words.md). Linked into quorumfsd only with jemalloc: the
// sanitizer builds keep their own operator new. jemalloc's counters cannot serve: its thread
// caches hide most requests from them.
//
// Each thread counts in its own slot (a relaxed load and store, no locked instruction); a
// reader sums the slots. Slots are never freed, so a thread that ended still counts.
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <new>

namespace {

struct Slot {
  std::atomic<uint64_t> n{0};
  Slot* next = nullptr;
};
std::atomic<Slot*> slots{nullptr};

Slot* NewSlot() {
  // malloc, not new: this runs inside operator new.
  void* mem = std::malloc(sizeof(Slot));
  if (!mem) std::abort();
  Slot* s = new (mem) Slot;
  s->next = slots.load(std::memory_order_relaxed);
  while (!slots.compare_exchange_weak(s->next, s, std::memory_order_release,
                                      std::memory_order_relaxed)) {
  }
  return s;
}

inline void Count() {
  thread_local Slot* mine = NewSlot();
  mine->n.store(mine->n.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

void* Allocate(size_t n) {
  Count();
  if (n == 0) n = 1;
  void* p = std::malloc(n);
  if (!p) throw std::bad_alloc();
  return p;
}

void* AllocateAligned(size_t n, std::align_val_t al) {
  Count();
  const size_t a = static_cast<size_t>(al);
  void* p = std::aligned_alloc(a, (n + a - 1) / a * a);
  if (!p) throw std::bad_alloc();
  return p;
}

}  // namespace

extern "C" int64_t QfsAllocationCount() {
  uint64_t t = 0;
  for (Slot* s = slots.load(std::memory_order_acquire); s; s = s->next)
    t += s->n.load(std::memory_order_relaxed);
  return static_cast<int64_t>(t);
}

void* operator new(size_t n) {
  return Allocate(n);
}
void* operator new[](size_t n) {
  return Allocate(n);
}
void* operator new(size_t n, const std::nothrow_t&) noexcept {
  Count();
  return std::malloc(n ? n : 1);
}
void* operator new[](size_t n, const std::nothrow_t&) noexcept {
  Count();
  return std::malloc(n ? n : 1);
}
void* operator new(size_t n, std::align_val_t al) {
  return AllocateAligned(n, al);
}
void* operator new[](size_t n, std::align_val_t al) {
  return AllocateAligned(n, al);
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, size_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete(void* p, size_t, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, size_t, std::align_val_t) noexcept {
  std::free(p);
}
