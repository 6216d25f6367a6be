// qfs_shaper: latency, jitter, duplication and reordering of real packets through NFQUEUE, for
// kernels without the netem qdisc (docs/faults.md, "Mechanisms"). iptables sends the packets of
// the shaped address pairs to queue N (-j NFQUEUE --queue-num N); this program holds each one
// and gives its ACCEPT verdict later, so the kernel's own TCP segments arrive late, duplicated
// or out of order. It never builds a packet of its own except the copies it duplicates.
//
//   qfs_shaper --queue N [--delay MS] [--jitter MS] [--dup P] [--reorder P] [--gap MS]
//              [--mark M] [--seed S]
//
// Every packet is released after delay ± jitter (uniform; with jitter, later packets may
// overtake earlier ones, as with netem). With probability --reorder a packet is held --gap ms
// (default 10) longer, so the packets after it overtake it. With probability --dup a copy is sent
// through a raw socket carrying --mark (default 0x5153) at the same time as the packet; the
// iptables rule skips marked packets so the copy is not queued again. On SIGTERM/SIGINT every held
// packet is released at once and the counters are printed on stderr.

#include <arpa/inet.h>
#include <errno.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <netinet/ip.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
  uint64_t due_ns;
  uint32_t id;
  uint32_t seq;  // arrival order, breaks ties so equal delays keep the order
} Held;

static Held* heap;
static size_t heap_n, heap_cap;
static volatile sig_atomic_t stopping;
static double opt_delay_ms, opt_jitter_ms, opt_dup, opt_reorder, opt_gap_ms = 10;
static uint32_t opt_mark = 0x5153;
static int raw_fd = -1;
static uint64_t n_packets, n_dups, n_reordered, n_dup_errors;
static uint32_t arrivals;
static struct nfq_q_handle* qh;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int earlier(const Held* a, const Held* b) {
  return a->due_ns < b->due_ns || (a->due_ns == b->due_ns && a->seq < b->seq);
}

static void heap_push(Held h) {
  if (heap_n == heap_cap) {
    heap_cap = heap_cap ? heap_cap * 2 : 1024;
    heap = realloc(heap, heap_cap * sizeof *heap);
    if (!heap) abort();
  }
  size_t i = heap_n++;
  heap[i] = h;
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (!earlier(&heap[i], &heap[p])) break;
    Held t = heap[i];
    heap[i] = heap[p];
    heap[p] = t;
    i = p;
  }
}

static Held heap_pop(void) {
  Held top = heap[0];
  heap[0] = heap[--heap_n];
  size_t i = 0;
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < heap_n && earlier(&heap[l], &heap[m])) m = l;
    if (r < heap_n && earlier(&heap[r], &heap[m])) m = r;
    if (m == i) break;
    Held t = heap[i];
    heap[i] = heap[m];
    heap[m] = t;
    i = m;
  }
  return top;
}

static double uniform(void) {
  return (double)random() / ((double)RAND_MAX + 1.0);
}

static void duplicate(const unsigned char* pkt, int len) {
  if (len < (int)sizeof(struct iphdr)) return;
  const struct iphdr* ip = (const struct iphdr*)pkt;
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_addr.s_addr = ip->daddr};
  if (sendto(raw_fd, pkt, (size_t)len, 0, (struct sockaddr*)&to, sizeof to) == len)
    n_dups++;
  else
    n_dup_errors++;
}

static int on_packet(struct nfq_q_handle* q, struct nfgenmsg* msg, struct nfq_data* nfa,
                     void* data) {
  (void)msg;
  (void)data;
  struct nfqnl_msg_packet_hdr* ph = nfq_get_msg_packet_hdr(nfa);
  if (!ph) return 0;
  uint32_t id = ntohl(ph->packet_id);
  n_packets++;
  double ms = opt_delay_ms;
  if (opt_jitter_ms > 0) ms += (uniform() * 2 - 1) * opt_jitter_ms;
  if (opt_reorder > 0 && uniform() < opt_reorder) {
    ms += opt_gap_ms;
    n_reordered++;
  }
  if (opt_dup > 0 && uniform() < opt_dup) {
    unsigned char* payload;
    int len = nfq_get_payload(nfa, &payload);
    if (len > 0) duplicate(payload, len);
  }
  if (ms <= 0) return nfq_set_verdict(q, id, NF_ACCEPT, 0, NULL);
  heap_push((Held){now_ns() + (uint64_t)(ms * 1e6), id, arrivals++});
  return 0;
}

static void release_due(int all) {
  uint64_t now = now_ns();
  while (heap_n > 0 && (all || heap[0].due_ns <= now)) {
    Held h = heap_pop();
    nfq_set_verdict(qh, h.id, NF_ACCEPT, 0, NULL);
  }
}

static void on_signal(int sig) {
  (void)sig;
  stopping = 1;
}

static void usage(void) {
  fprintf(stderr,
          "usage: qfs_shaper --queue N [--delay MS] [--jitter MS] [--dup P] [--reorder P] "
          "[--gap MS] [--mark M] [--seed S]\n");
  exit(2);
}

int main(int argc, char** argv) {
  int queue = -1;
  unsigned seed = (unsigned)getpid();
  for (int i = 1; i < argc; i++) {
    if (i + 1 >= argc) usage();
    const char* k = argv[i];
    const char* v = argv[++i];
    if (!strcmp(k, "--queue"))
      queue = atoi(v);
    else if (!strcmp(k, "--delay"))
      opt_delay_ms = atof(v);
    else if (!strcmp(k, "--jitter"))
      opt_jitter_ms = atof(v);
    else if (!strcmp(k, "--dup"))
      opt_dup = atof(v);
    else if (!strcmp(k, "--reorder"))
      opt_reorder = atof(v);
    else if (!strcmp(k, "--gap"))
      opt_gap_ms = atof(v);
    else if (!strcmp(k, "--mark"))
      opt_mark = (uint32_t)strtoul(v, NULL, 0);
    else if (!strcmp(k, "--seed"))
      seed = (unsigned)strtoul(v, NULL, 0);
    else
      usage();
  }
  if (queue < 0 || queue > 65535) usage();
  srandom(seed);

  raw_fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);  // IP_HDRINCL implied
  if (raw_fd < 0 || setsockopt(raw_fd, SOL_SOCKET, SO_MARK, &opt_mark, sizeof opt_mark) < 0) {
    perror("qfs_shaper: raw socket");
    return 1;
  }
  struct nfq_handle* h = nfq_open();
  if (!h) {
    perror("qfs_shaper: nfq_open");
    return 1;
  }
  qh = nfq_create_queue(h, (uint16_t)queue, on_packet, NULL);
  if (!qh) {
    fprintf(stderr, "qfs_shaper: cannot bind queue %d: %s\n", queue, strerror(errno));
    return 1;
  }
  // whole packets: the duplicates are copies of them
  if (nfq_set_mode(qh, NFQNL_COPY_PACKET, 0xffff) < 0 || nfq_set_queue_maxlen(qh, 65536) < 0) {
    fprintf(stderr, "qfs_shaper: cannot configure queue %d\n", queue);
    return 1;
  }
  int fd = nfq_fd(h);
  int rcvbuf = 8 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf);
  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  printf("ready queue %d\n", queue);
  fflush(stdout);

  char buf[1 << 17];
  while (!stopping) {
    int timeout = -1;
    if (heap_n > 0) {
      uint64_t now = now_ns();
      timeout = heap[0].due_ns <= now ? 0 : (int)((heap[0].due_ns - now + 999999) / 1000000);
    }
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r = poll(&p, 1, timeout);
    if (r > 0) {
      for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n <= 0) break;  // ENOBUFS (the kernel dropped some): TCP retransmits them
        nfq_handle_packet(h, buf, (int)n);
      }
    }
    release_due(0);
  }
  release_due(1);
  fprintf(stderr,
          "qfs_shaper: queue %d: %llu packets, %llu duplicated (%llu failed), %llu "
          "held back for reordering\n",
          queue, (unsigned long long)n_packets, (unsigned long long)n_dups,
          (unsigned long long)n_dup_errors, (unsigned long long)n_reordered);
  nfq_destroy_queue(qh);
  nfq_close(h);
  return 0;
}
