// Runs file operations on one descriptor, one command per line on stdin, and prints each
// result, for tests/fuse/openfile_test.sh (open files on the mount, docs/fuse.md).
//   open PATH FLAGS   flags: w (O_WRONLY) r (O_RDONLY) b (O_RDWR) c t x a (CREAT TRUNC EXCL APPEND)
//   write TEXT        write(2) of TEXT (no newline)       -> "write N" or "write -1 ERRNAME"
//   fstat             -> "fstat SIZE NLINK"
//   seekend           lseek(fd, 0, SEEK_END)                -> "seekend OFFSET"
//   ftruncate N       -> "ftruncate 0" or "ftruncate -1 ERRNAME"
//   zeros OFF N       pread of N bytes at OFF               -> "zeros yes|no GOT"
//   readall           pread from 0, up to 4096 bytes        -> "readall TEXT"
//   stat PATH         stat(2) by path                       -> "stat SIZE" or "stat -1 ERRNAME"
//   close             -> "close 0" or "close -1 ERRNAME"
//   touch FILE        creates FILE (tells the test this point was reached)
//   await FILE        waits (at most 20 s) until FILE exists (the test's go-ahead)
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char* ErrName(int e) {
  switch (e) {
    case ENOENT: return "ENOENT";
    case EEXIST: return "EEXIST";
    case ESTALE: return "ESTALE";
    case EBUSY: return "EBUSY";
    case EFBIG: return "EFBIG";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EACCES: return "EACCES";
    case EBADF: return "EBADF";
    default: return strerror(e);
  }
}

int main(void) {
  char line[8192];
  int fd = -1;
  while (fgets(line, sizeof line, stdin)) {
    line[strcspn(line, "\n")] = 0;
    char* arg = strchr(line, ' ');
    if (arg) *arg++ = 0;
    const char* cmd = line;
    if (!strcmp(cmd, "open")) {
      char* sp = strrchr(arg, ' ');
      *sp = 0;
      const char* f = sp + 1;
      int flags = strchr(f, 'b') ? O_RDWR : strchr(f, 'w') ? O_WRONLY : O_RDONLY;
      if (strchr(f, 'c')) flags |= O_CREAT;
      if (strchr(f, 't')) flags |= O_TRUNC;
      if (strchr(f, 'x')) flags |= O_EXCL;
      if (strchr(f, 'a')) flags |= O_APPEND;
      fd = open(arg, flags, 0644);
      if (fd < 0) printf("open -1 %s\n", ErrName(errno));
      else printf("open 0\n");
    } else if (!strcmp(cmd, "write")) {
      ssize_t n = write(fd, arg ? arg : "", arg ? strlen(arg) : 0);
      if (n < 0) printf("write -1 %s\n", ErrName(errno));
      else printf("write %zd\n", n);
    } else if (!strcmp(cmd, "fstat")) {
      struct stat st;
      if (fstat(fd, &st) < 0) printf("fstat -1 %s\n", ErrName(errno));
      else printf("fstat %lld %lu\n", (long long)st.st_size, (unsigned long)st.st_nlink);
    } else if (!strcmp(cmd, "seekend")) {
      off_t o = lseek(fd, 0, SEEK_END);
      if (o < 0) printf("seekend -1 %s\n", ErrName(errno));
      else printf("seekend %lld\n", (long long)o);
    } else if (!strcmp(cmd, "ftruncate")) {
      if (ftruncate(fd, atoll(arg)) < 0) printf("ftruncate -1 %s\n", ErrName(errno));
      else printf("ftruncate 0\n");
    } else if (!strcmp(cmd, "zeros")) {
      long long off = 0, n = 0;
      sscanf(arg, "%lld %lld", &off, &n);
      char* buf = calloc(1, (size_t)n);
      ssize_t got = pread(fd, buf, (size_t)n, off);
      int zero = got == n;
      for (ssize_t i = 0; zero && i < got; i++) zero = buf[i] == 0;
      printf("zeros %s %zd\n", zero ? "yes" : "no", got);
      free(buf);
    } else if (!strcmp(cmd, "readall")) {
      char buf[4097];
      ssize_t got = pread(fd, buf, 4096, 0);
      if (got < 0) printf("readall -1 %s\n", ErrName(errno));
      else printf("readall %.*s\n", (int)got, buf);
    } else if (!strcmp(cmd, "stat")) {
      struct stat st;
      if (stat(arg, &st) < 0) printf("stat -1 %s\n", ErrName(errno));
      else printf("stat %lld\n", (long long)st.st_size);
    } else if (!strcmp(cmd, "close")) {
      if (close(fd) < 0) printf("close -1 %s\n", ErrName(errno));
      else printf("close 0\n");
      fd = -1;
    } else if (!strcmp(cmd, "touch")) {
      int t = open(arg, O_CREAT | O_WRONLY, 0644);
      if (t >= 0) close(t);
    } else if (!strcmp(cmd, "await")) {
      struct timespec ten_ms = {0, 10 * 1000 * 1000};
      int i = 0;
      while (access(arg, F_OK) != 0 && i++ < 2000) nanosleep(&ten_ms, NULL);
      if (i > 2000) printf("await timeout %s\n", arg);
    } else if (cmd[0]) {
      printf("unknown %s\n", cmd);
      return 2;
    }
    fflush(stdout);
  }
  return 0;
}
