// An fsx-style data-integrity exerciser (docs/fuse.md, "Conformance"): one file, a model of
// its content in memory, random operations from a seed, every result checked against the model.
// Sizes are checked with fstat and lseek(SEEK_END) after every change, as fsx does.
//
//   qfs_fsx [-N ops] [-S seed] [-l maxlen] [-x family]... FILE
//
// Families (each can be excluded with -x): write, read, mapread, truncate, reopen, append,
// size (the fstat/lseek checks). Exit status 0 when every op matched the model, 1 on the first
// mismatch (after printing the seed and the last ops), 2 on a usage error.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

enum { F_WRITE, F_READ, F_MAPREAD, F_TRUNCATE, F_REOPEN, F_APPEND, F_SIZE, F_COUNT };
static const char* family_names[F_COUNT] = {"write",  "read",   "mapread", "truncate",
                                            "reopen", "append", "size"};
static int enabled[F_COUNT] = {1, 1, 1, 1, 1, 1, 1};

static const char* path;
static int fd = -1;
static unsigned char *model, *buf;
static size_t model_size, max_len = 256 * 1024;
static uint64_t rng;
static long op_no;

// The last ops, printed on a mismatch.
#define LOG_N 64
static char oplog[LOG_N][96];

static uint64_t next_rand(void) {  // xorshift64*: reproducible from the seed on any libc
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  return rng * 2685821657736338717ULL;
}
static size_t rand_below(size_t n) {
  return n ? (size_t)(next_rand() % n) : 0;
}

static void logop(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
static void logop(const char* fmt, ...) {
  char* s = oplog[op_no % LOG_N];
  int k = snprintf(s, sizeof oplog[0], "%6ld ", op_no);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s + k, sizeof oplog[0] - k, fmt, ap);
  va_end(ap);
}

static unsigned long seed;
static void die(const char* fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "fsx: op %ld: ", op_no);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\nfsx: seed %lu, file %s, model size %zu; last ops:\n", seed, path, model_size);
  long first = op_no - LOG_N + 1 < 0 ? 0 : op_no - LOG_N + 1;
  for (long i = first; i <= op_no; i++) fprintf(stderr, "  %s\n", oplog[i % LOG_N]);
  exit(1);
}

static void open_file(int flags) {
  fd = open(path, O_RDWR | flags);
  if (fd < 0) die("open: %s", strerror(errno));
}

static void close_file(void) {
  if (close(fd) != 0) die("close: %s", strerror(errno));
  fd = -1;
}

static void compare(const unsigned char* got, size_t off, size_t len, const char* what) {
  for (size_t i = 0; i < len; i++) {
    if (got[i] != model[off + i]) {
      die("%s mismatch at offset %zu (0x%zx): got 0x%02x, expected 0x%02x (%zu bytes read at "
          "%zu)",
          what, off + i, off + i, got[i], model[off + i], len, off);
    }
  }
}

static void check_size(const char* after) {
  if (!enabled[F_SIZE]) return;
  struct stat st;
  if (fstat(fd, &st) != 0) die("fstat: %s", strerror(errno));
  off_t end = lseek(fd, 0, SEEK_END);
  if ((size_t)st.st_size != model_size || end != (off_t)model_size) {
    die("size after %s: fstat %lld, lseek(SEEK_END) %lld, expected %zu", after,
        (long long)st.st_size, (long long)end, model_size);
  }
}

static void fill(size_t len) {
  for (size_t i = 0; i < len; i++) buf[i] = (unsigned char)(next_rand() >> 24);
  // Some NUL runs: they must survive like any other byte.
  if (len > 8 && rand_below(4) == 0) memset(buf + rand_below(len - 8), 0, 8);
}

static void do_write(void) {
  size_t off = rand_below(max_len);
  size_t len = 1 + rand_below(max_len - off < 65536 ? max_len - off : 65536);
  logop("write   off %zu len %zu", off, len);
  fill(len);
  ssize_t n = pwrite(fd, buf, len, (off_t)off);
  if (n != (ssize_t)len) die("pwrite returned %zd (%s), expected %zu", n, strerror(errno), len);
  if (off > model_size) memset(model + model_size, 0, off - model_size);
  memcpy(model + off, buf, len);
  if (off + len > model_size) model_size = off + len;
  check_size("write");
}

static void do_append(void) {
  // O_APPEND: a handle of its own (reopened), each write at the end whatever the offset.
  size_t room = max_len - model_size;
  if (room == 0) {
    logop("append  skipped (file at the maximum length)");
    return;
  }
  size_t len = 1 + rand_below(room < 8192 ? room : 8192);
  logop("append  len %zu (at %zu)", len, model_size);
  close_file();
  open_file(O_APPEND);
  fill(len);
  if (lseek(fd, 0, SEEK_SET) != 0) die("lseek: %s", strerror(errno));
  ssize_t n = write(fd, buf, len);
  if (n != (ssize_t)len)
    die("append write returned %zd (%s), expected %zu", n, strerror(errno), len);
  memcpy(model + model_size, buf, len);
  model_size += len;
  check_size("append");
  close_file();
  open_file(0);
}

static void do_read(void) {
  if (model_size == 0) {
    logop("read    skipped (empty file)");
    return;
  }
  size_t off = rand_below(model_size);
  size_t len = 1 + rand_below(model_size - off);
  logop("read    off %zu len %zu", off, len);
  ssize_t n = pread(fd, buf, len, (off_t)off);
  if (n != (ssize_t)len) die("pread returned %zd (%s), expected %zu", n, strerror(errno), len);
  compare(buf, off, len, "read");
  // Past the end: nothing.
  n = pread(fd, buf, 16, (off_t)model_size);
  if (n != 0) die("pread at the end (%zu) returned %zd, expected 0", model_size, n);
}

static sigjmp_buf bus_jump;
static void on_bus(int sig) {
  siglongjmp(bus_jump, sig);
}

static void do_mapread(void) {
  if (model_size == 0) {
    logop("mapread skipped (empty file)");
    return;
  }
  size_t off = rand_below(model_size);
  size_t len = 1 + rand_below(model_size - off);
  logop("mapread off %zu len %zu", off, len);
  long page = sysconf(_SC_PAGESIZE);
  size_t pg = off - off % (size_t)page;
  unsigned char* p = mmap(NULL, len + (off - pg), PROT_READ, MAP_SHARED, fd, (off_t)pg);
  if (p == MAP_FAILED) die("mmap: %s", strerror(errno));
  if (sigsetjmp(bus_jump, 1) != 0) die("SIGBUS reading the mapping (%zu bytes at %zu)", len, off);
  compare(p + (off - pg), off, len, "mapread");
  if (munmap(p, len + (off - pg)) != 0) die("munmap: %s", strerror(errno));
}

static void do_truncate(void) {
  size_t len = rand_below(max_len + 1);
  logop("ftruncate %zu (from %zu)", len, model_size);
  if (ftruncate(fd, (off_t)len) != 0) die("ftruncate: %s", strerror(errno));
  if (len > model_size) memset(model + model_size, 0, len - model_size);
  model_size = len;
  check_size("ftruncate");
}

static void do_reopen(void) {
  // close commits on the mount (docs/fuse.md, "Writing"); the new handle must see it all.
  logop("close+reopen (size %zu)", model_size);
  close_file();
  open_file(0);
  check_size("reopen");
}

int main(int argc, char** argv) {
  long ops = 2000;
  seed = (unsigned long)getpid();
  int c;
  while ((c = getopt(argc, argv, "N:S:l:x:")) != -1) {
    switch (c) {
      case 'N':
        ops = atol(optarg);
        break;
      case 'S':
        seed = strtoul(optarg, NULL, 0);
        break;
      case 'l':
        max_len = strtoul(optarg, NULL, 0);
        break;
      case 'x': {
        int found = 0;
        for (int f = 0; f < F_COUNT; f++) {
          if (strcmp(optarg, family_names[f]) == 0) enabled[f] = 0, found = 1;
        }
        if (!found) {
          fprintf(stderr, "fsx: unknown family %s\n", optarg);
          return 2;
        }
        break;
      }
      default:
        goto usage;
    }
  }
  if (optind + 1 != argc || ops <= 0 || max_len == 0) {
  usage:
    fprintf(stderr, "usage: qfs_fsx [-N ops] [-S seed] [-l maxlen] [-x family]... FILE\n");
    return 2;
  }
  path = argv[optind];
  rng = seed * 0x9E3779B97F4A7C15ULL + 1;
  model = calloc(max_len, 1);
  buf = malloc(max_len);
  if (!model || !buf) return 2;
  struct sigaction sa = {0};
  sa.sa_handler = on_bus;
  sigaction(SIGBUS, &sa, NULL);

  fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    fprintf(stderr, "fsx: %s: %s\n", path, strerror(errno));
    return 1;
  }
  printf("fsx: seed %lu, %ld ops, max length %zu, file %s, families:", seed, ops, max_len, path);
  for (int f = 0; f < F_COUNT; f++)
    if (enabled[f]) printf(" %s", family_names[f]);
  printf("\n");
  fflush(stdout);

  long count[F_COUNT] = {0};
  for (op_no = 0; op_no < ops; op_no++) {
    int f;
    do {  // weights: writes and reads most, like fsx
      size_t r = rand_below(100);
      f = r < 35   ? F_WRITE
          : r < 65 ? F_READ
          : r < 77 ? F_MAPREAD
          : r < 87 ? F_TRUNCATE
          : r < 94 ? F_REOPEN
                   : F_APPEND;
    } while (!enabled[f]);
    count[f]++;
    switch (f) {
      case F_WRITE:
        do_write();
        break;
      case F_READ:
        do_read();
        break;
      case F_MAPREAD:
        do_mapread();
        break;
      case F_TRUNCATE:
        do_truncate();
        break;
      case F_REOPEN:
        do_reopen();
        break;
      case F_APPEND:
        do_append();
        break;
    }
  }
  // The end: what was committed is what the model holds, read through a new handle.
  close_file();
  open_file(0);
  op_no = ops;
  logop("final read of %zu bytes", model_size);
  ssize_t n = pread(fd, buf, max_len, 0);
  if (n != (ssize_t)model_size) die("final pread returned %zd, expected %zu", n, model_size);
  compare(buf, 0, model_size, "final read");
  close_file();
  printf("fsx: %ld ops passed (", ops);
  for (int f = 0; f < F_SIZE; f++) printf("%s%s %ld", f ? ", " : "", family_names[f], count[f]);
  printf("), final size %zu\n", model_size);
  return 0;
}
