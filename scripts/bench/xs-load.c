/* xs-load: a raw-protocol load generator for any xenstore daemon on a Unix socket, so ours
 * and Xen's C xenstored are measured by the same client in the same run.
 *
 *   xs-load SOCKET latency  N          one client, N x (WRITE + READ), per-op p50/p99
 *   xs-load SOCKET throughput C SECS   C clients (threads), WRITE+READ for SECS, aggregate ops/s
 *                                      and per-request write/read p50/p99 over all clients
 *   xs-load SOCKET watchers W          W watch connections on one path, one write: time until all saw it
 *   xs-load SOCKET nodes N             write N nodes (then read the daemon's RSS yourself)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

enum { XS_READ = 2, XS_WATCH = 4, XS_WRITE = 11, XS_MKDIR = 12, XS_WATCH_EVENT = 15, XS_ERROR = 16 };
struct hdr { uint32_t type, req, tx, len; };
static const char *sock_path;

static uint64_t now_ns(void) {
  struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}
static int xs_connect(void) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un a = { .sun_family = AF_UNIX };
  strncpy(a.sun_path, sock_path, sizeof a.sun_path - 1);
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) { perror("connect"); exit(2); }
  return fd;
}
static void full_write(int fd, const void *b, size_t n) {
  while (n) { ssize_t w = write(fd, b, n); if (w < 0) { if (errno == EINTR) continue; perror("write"); exit(2); } b = (const char *)b + w; n -= w; }
}
static void full_read(int fd, void *b, size_t n) {
  while (n) { ssize_t r = read(fd, b, n); if (r <= 0) { if (r < 0 && errno == EINTR) continue; fprintf(stderr, "read: connection closed\n"); exit(2); } b = (char *)b + r; n -= r; }
}
/* Sends one request (header and payload in one write) and reads replies until the one with
 * this type arrives; watch events met on the way are counted and skipped. */
static int request(int fd, uint32_t type, const char *payload, size_t len, char *out, size_t outmax) {
  char buf[16 + 4096]; struct hdr h = { type, 0, 0, (uint32_t)len };
  memcpy(buf, &h, 16); memcpy(buf + 16, payload, len);
  full_write(fd, buf, 16 + len);
  for (;;) {
    struct hdr r; full_read(fd, &r, 16);
    char body[4096]; full_read(fd, body, r.len);
    if (r.type == XS_WATCH_EVENT) continue;
    if (r.type == XS_ERROR) { fprintf(stderr, "error reply: %.*s\n", (int)r.len, body); exit(3); }
    if (out) memcpy(out, body, r.len < outmax ? r.len : outmax);
    return (int)r.len;
  }
}
static size_t mkpayload(char *p, const char *path, const char *value) {
  size_t n = strlen(path) + 1; memcpy(p, path, n);
  size_t v = value ? strlen(value) : 0; memcpy(p + n, value, v); return n + v;
}
static int cmp_u64(const void *a, const void *b) { uint64_t x = *(uint64_t *)a, y = *(uint64_t *)b; return x < y ? -1 : x > y; }

static void latency(int n) {
  int fd = xs_connect(); char p[256], out[64];
  uint64_t *w = malloc(n * sizeof *w), *r = malloc(n * sizeof *r);
  for (int i = 0; i < n; i++) {
    size_t len = mkpayload(p, "/bench/lat", "value"); uint64_t t0 = now_ns();
    request(fd, XS_WRITE, p, len, NULL, 0); uint64_t t1 = now_ns();
    request(fd, XS_READ, "/bench/lat", 11, out, sizeof out); uint64_t t2 = now_ns();
    w[i] = t1 - t0; r[i] = t2 - t1;
  }
  qsort(w, n, sizeof *w, cmp_u64); qsort(r, n, sizeof *r, cmp_u64);
  printf("latency n=%d write p50=%.1fus p99=%.1fus read p50=%.1fus p99=%.1fus\n", n,
         w[n / 2] / 1e3, w[n * 99 / 100] / 1e3, r[n / 2] / 1e3, r[n * 99 / 100] / 1e3);
}

static volatile int stop_flag;
/* One client's request latencies (ns), grown as it goes. */
struct samples { uint64_t *v; size_t n, cap; };
static void add_sample(struct samples *s, uint64_t x) {
  if (s->n == s->cap) { s->cap = s->cap ? s->cap * 2 : 4096; s->v = realloc(s->v, s->cap * sizeof *s->v); if (!s->v) exit(2); }
  s->v[s->n++] = x;
}
struct worker { long id; long ops; struct samples writes, reads; };
static void *throughput_worker(void *arg) {
  struct worker *w = arg; int fd = xs_connect(); char path[64], p[128], out[64];
  snprintf(path, sizeof path, "/bench/tp/%ld", w->id);
  while (!stop_flag) {
    size_t len = mkpayload(p, path, "value"); uint64_t t0 = now_ns();
    request(fd, XS_WRITE, p, len, NULL, 0); uint64_t t1 = now_ns();
    request(fd, XS_READ, path, strlen(path) + 1, out, sizeof out); uint64_t t2 = now_ns();
    add_sample(&w->writes, t1 - t0); add_sample(&w->reads, t2 - t1);
    w->ops += 2;
  }
  close(fd); return NULL;
}
/* p50 and p99 (µs) of every client's samples of one kind, merged. */
static void percentiles(struct worker *ws, int clients, int reads, double *p50, double *p99) {
  size_t n = 0; for (int i = 0; i < clients; i++) n += (reads ? ws[i].reads : ws[i].writes).n;
  uint64_t *all = malloc((n ? n : 1) * sizeof *all); size_t k = 0;
  for (int i = 0; i < clients; i++) { struct samples *s = reads ? &ws[i].reads : &ws[i].writes; memcpy(all + k, s->v, s->n * sizeof *all); k += s->n; }
  qsort(all, n, sizeof *all, cmp_u64);
  *p50 = n ? all[n / 2] / 1e3 : 0; *p99 = n ? all[n * 99 / 100] / 1e3 : 0; free(all);
}
static void throughput(int clients, int secs) {
  pthread_t t[256]; if (clients > 256) clients = 256;
  struct worker *ws = calloc(clients, sizeof *ws);
  uint64_t t0 = now_ns();
  for (long i = 0; i < clients; i++) { ws[i].id = i; pthread_create(&t[i], NULL, throughput_worker, &ws[i]); }
  sleep(secs); stop_flag = 1; long total = 0;
  for (int i = 0; i < clients; i++) { pthread_join(t[i], NULL); total += ws[i].ops; }
  double s = (now_ns() - t0) / 1e9, w50, w99, r50, r99;
  percentiles(ws, clients, 0, &w50, &w99); percentiles(ws, clients, 1, &r50, &r99);
  printf("throughput clients=%d ops=%ld secs=%.2f ops/s=%.0f write p50=%.1fus p99=%.1fus read p50=%.1fus p99=%.1fus\n",
         clients, total, s, total / s, w50, w99, r50, r99);
}

static void watchers(int w) {
  int *fds = malloc(w * sizeof *fds); char p[128];
  int writer = xs_connect();
  request(writer, XS_MKDIR, "/bench/w", 9, NULL, 0);
  for (int i = 0; i < w; i++) {
    fds[i] = xs_connect();
    size_t len = mkpayload(p, "/bench/w", NULL); memcpy(p + len, "tok", 4); len += 4;
    request(fds[i], XS_WATCH, p, len, NULL, 0);
    struct hdr r; char body[4096]; full_read(fds[i], &r, 16); full_read(fds[i], body, r.len); /* first event */
  }
  size_t len = mkpayload(p, "/bench/w", "go"); uint64_t t0 = now_ns();
  request(writer, XS_WRITE, p, len, NULL, 0);
  uint64_t last = 0;
  for (int i = 0; i < w; i++) {
    struct hdr r; char body[4096]; full_read(fds[i], &r, 16); full_read(fds[i], body, r.len);
    if (r.type != XS_WATCH_EVENT) { fprintf(stderr, "unexpected type %u\n", r.type); exit(3); }
    last = now_ns();
  }
  printf("watchers=%d all events delivered in %.2f ms\n", w, (last - t0) / 1e6);
}

static void nodes(int n) {
  int fd = xs_connect(); char path[64], p[128];
  uint64_t t0 = now_ns();
  for (int i = 0; i < n; i++) {
    snprintf(path, sizeof path, "/bench/nodes/%d/%d", i / 1000, i % 1000);
    size_t len = mkpayload(p, path, "0123456789abcdef");
    request(fd, XS_WRITE, p, len, NULL, 0);
  }
  printf("nodes=%d written in %.2f s\n", n, (now_ns() - t0) / 1e9);
}

int main(int argc, char **argv) {
  if (argc < 4) { fprintf(stderr, "usage: xs-load SOCKET latency N | throughput C SECS | watchers W | nodes N\n"); return 1; }
  sock_path = argv[1];
  const char *mode = argv[2];
  if (!strcmp(mode, "latency")) latency(atoi(argv[3]));
  else if (!strcmp(mode, "throughput") && argc > 4) throughput(atoi(argv[3]), atoi(argv[4]));
  else if (!strcmp(mode, "watchers")) watchers(atoi(argv[3]));
  else if (!strcmp(mode, "nodes")) nodes(atoi(argv[3]));
  else { fprintf(stderr, "unknown mode %s\n", mode); return 1; }
  return 0;
}
