/* ZooKeeper's C client (libzookeeper_mt) with ZOO_READONLY against a read-only member
 * (docs/read-only.md), used by test_read_only.py:
 *
 *   ro_c_client HOST:PORT PATH VALUE
 *
 * Connects with the read-only flag, expects ZOO_READONLY_STATE, reads PATH (must hold VALUE),
 * expects ZNOTREADONLY for a create and a set. Prints "ok NAME" or "FAIL NAME: why" per check;
 * exits 1 if any failed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zookeeper/zookeeper.h>

static int failures;

static void check(int cond, const char* name, const char* why) {
  printf("%s %s%s%s\n", cond ? "ok" : "FAIL", name, cond ? "" : ": ", cond ? "" : why);
  fflush(stdout);
  if (!cond) failures++;
}

static void watcher(zhandle_t* zh, int type, int state, const char* path, void* ctx) {
  (void)zh, (void)type, (void)state, (void)path, (void)ctx;
}

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s HOST:PORT PATH VALUE\n", argv[0]);
    return 2;
  }
  zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
  zhandle_t* zh = zookeeper_init(argv[1], watcher, 4000, NULL, NULL, ZOO_READONLY);
  if (!zh) {
    perror("zookeeper_init");
    return 2;
  }
  int state = 0;
  for (int i = 0; i < 200; i++) { /* 10 s */
    state = zoo_state(zh);
    if (state == ZOO_READONLY_STATE || state == ZOO_CONNECTED_STATE) break;
    usleep(50 * 1000);
  }
  char why[512];
  snprintf(why, sizeof why, "state %d", state);
  check(state == ZOO_READONLY_STATE, "connected in ZOO_READONLY_STATE", why);
  if (state == ZOO_READONLY_STATE) {
    char buf[256];
    int len = sizeof buf - 1;
    int rc = zoo_get(zh, argv[2], 0, buf, &len, NULL);
    if (rc == ZOK && len >= 0) buf[len] = 0;
    snprintf(why, sizeof why, "rc %d (%s), value '%s'", rc, zerror(rc), rc == ZOK ? buf : "");
    check(rc == ZOK && strcmp(buf, argv[3]) == 0, "zoo_get reads the value", why);
    char out[256];
    rc = zoo_create(zh, "/ro_c_client", "x", 1, &ZOO_OPEN_ACL_UNSAFE, 0, out, sizeof out);
    snprintf(why, sizeof why, "rc %d (%s)", rc, zerror(rc));
    check(rc == ZNOTREADONLY, "zoo_create fails with ZNOTREADONLY", why);
    rc = zoo_set(zh, argv[2], "y", 1, -1);
    snprintf(why, sizeof why, "rc %d (%s)", rc, zerror(rc));
    check(rc == ZNOTREADONLY, "zoo_set fails with ZNOTREADONLY", why);
  }
  zookeeper_close(zh);
  return failures ? 1 : 0;
}
