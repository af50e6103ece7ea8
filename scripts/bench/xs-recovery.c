/* xs-recovery cycle XENSTORED SOCKET STATEDIR LOGFILE NODES load|check
 * Starts XENSTORED -N on SOCKET and STATEDIR with --ready-fd 3, times it (see recovery.sh),
 * writes NODES nodes (load) or reads the last one back (check), stops it with SIGTERM.
 * Prints: ready_ms read_ms tmp_ms snap_ms rss_kB hwm_kB state_kB snap_kB setup_s stop_ms */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { XS_READ = 2, XS_WRITE = 11, XS_ERROR = 16, WINDOW = 1000 };
struct hdr { uint32_t type, req, tx, len; };

static uint64_t now_ns(void) {
  struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}
static void die(const char *m) { fprintf(stderr, "xs-recovery: %s: %s\n", m, strerror(errno)); exit(2); }
static void full_write(int fd, const void *b, size_t n) {
  while (n) { ssize_t w = write(fd, b, n); if (w < 0) { if (errno == EINTR) continue; die("write"); } b = (const char *)b + w; n -= w; }
}
static void full_read(int fd, void *b, size_t n) {
  while (n) { ssize_t r = read(fd, b, n); if (r <= 0) { if (r < 0 && errno == EINTR) continue; errno = r ? errno : EPIPE; die("read"); } b = (char *)b + r; n -= r; }
}
static int fanout;   /* $FANOUT: 0 for one flat directory /bench/n */
static void node(int i, char *path, char *value) {
  if (fanout > 0) sprintf(path, "/bench/n/%d/%d", i / fanout, i % fanout);
  else sprintf(path, "/bench/n/%d", i);
  sprintf(value, "v%019d", i);   /* 20 bytes */
}
static int xs_connect(const char *sock) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un a = { .sun_family = AF_UNIX };
  strncpy(a.sun_path, sock, sizeof a.sun_path - 1);
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) die("connect");
  return fd;
}
/* Replies to requests first..last-1, in order (one connection answers in order). */
static void replies(int fd, uint32_t first, uint32_t last, uint32_t type) {
  char body[4096];
  for (uint32_t id = first; id < last; id++) {
    struct hdr r; full_read(fd, &r, 16);
    if (r.len > sizeof body) { fprintf(stderr, "xs-recovery: reply of %u bytes\n", r.len); exit(3); }
    full_read(fd, body, r.len);
    if (r.type != type || r.req != id) {
      fprintf(stderr, "xs-recovery: request %u: reply type %u id %u: %.*s\n", id, r.type, r.req, (int)r.len, body);
      exit(3);
    }
  }
}
static void load(const char *sock, int n) {
  int fd = xs_connect(sock);
  char *buf = malloc(WINDOW * 128), path[64], value[32];
  for (int i = 0; i < n;) {
    size_t len = 0; int first = i;
    for (; i < n && i - first < WINDOW; i++) {
      node(i, path, value);
      size_t p = strlen(path) + 1, v = strlen(value);
      struct hdr h = { XS_WRITE, (uint32_t)i, 0, (uint32_t)(p + v) };
      memcpy(buf + len, &h, 16); memcpy(buf + len + 16, path, p); memcpy(buf + len + 16 + p, value, v);
      len += 16 + p + v;
    }
    full_write(fd, buf, len);
    replies(fd, first, i, XS_WRITE);
  }
  free(buf); close(fd);
}
/* READ of the last node: its value must be the one load wrote. */
static void check(const char *sock, int n) {
  int fd = xs_connect(sock);
  char path[64], want[32], got[64];
  node(n - 1, path, want);
  struct hdr h = { XS_READ, 7, 0, (uint32_t)strlen(path) + 1 }, r;
  char req[96]; memcpy(req, &h, 16); memcpy(req + 16, path, h.len);
  full_write(fd, req, 16 + h.len);
  full_read(fd, &r, 16);
  if (r.len >= sizeof got) { fprintf(stderr, "xs-recovery: READ reply of %u bytes\n", r.len); exit(3); }
  full_read(fd, got, r.len); got[r.len] = 0;
  if (r.type != XS_READ || strcmp(got, want)) { fprintf(stderr, "xs-recovery: READ %s: type %u \"%s\"\n", path, r.type, got); exit(3); }
  close(fd);
}

static char snap_path[4200], tmp_path[4300];
static uint64_t t0, t_tmp, t_snap;
static volatile int give_up;
static void *poll_dir(void *unused) {
  (void)unused; struct stat st;
  struct timespec pause = { 0, 250000 };
  while (!give_up) {
    if (!t_tmp && stat(tmp_path, &st) == 0) t_tmp = now_ns();
    if (stat(snap_path, &st) == 0) { t_snap = now_ns(); break; }
    nanosleep(&pause, NULL);
  }
  return NULL;
}
/* The next generation: one past the newest snapshot or log in dir (1 if none). */
static unsigned long long next_generation(const char *dir) {
  unsigned long long g = 0, x; DIR *d = opendir(dir);
  if (!d) return 1;
  for (struct dirent *e; (e = readdir(d));) {
    const char *s = e->d_name; size_t l = strlen(s);
    if (l > 4 && !strcmp(s + l - 4, ".tmp")) continue;
    if ((sscanf(s, "snapshot-%llu", &x) == 1 || sscanf(s, "log-%llu", &x) == 1) && x > g) g = x;
  }
  closedir(d); return g + 1;
}
static long status_kb(pid_t pid, const char *key) {
  char file[64], line[256]; long v = -1; size_t k = strlen(key);
  snprintf(file, sizeof file, "/proc/%d/status", pid);
  FILE *f = fopen(file, "r"); if (!f) die(file);
  while (fgets(line, sizeof line, f)) if (!strncmp(line, key, k) && line[k] == ':') v = atol(line + k + 1);
  fclose(f); return v;
}
static long dir_kb(const char *dir) {   /* allocated, as du */
  long long bytes = 0; char p[4400]; struct stat st; DIR *d = opendir(dir);
  if (!d) die(dir);
  for (struct dirent *e; (e = readdir(d));) {
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    if (e->d_name[0] != '.' && lstat(p, &st) == 0) bytes += (long long)st.st_blocks * 512;
  }
  closedir(d); return (long)(bytes / 1024);
}
/* A time since fork as text, "-" if it was not seen. */
static const char *ms(uint64_t t, char *buf) {
  if (!t) return "-";
  sprintf(buf, "%.1f", (t - t0) / 1e6); return buf;
}

int main(int argc, char **argv) {
  if (argc != 8 || strcmp(argv[1], "cycle")) {
    fprintf(stderr, "usage: xs-recovery cycle XENSTORED SOCKET STATEDIR LOGFILE NODES load|check\n"); return 1;
  }
  const char *bin = argv[2], *sock = argv[3], *dir = argv[4], *logfile = argv[5];
  int n = atoi(argv[6]), loading = !strcmp(argv[7], "load");
  fanout = getenv("FANOUT") ? atoi(getenv("FANOUT")) : 0;
  unsigned long long gen = next_generation(dir);
  snprintf(snap_path, sizeof snap_path, "%s/snapshot-%010llu", dir, gen);
  snprintf(tmp_path, sizeof tmp_path, "%s.tmp", snap_path);
  int p[2]; if (pipe2(p, O_CLOEXEC) < 0) die("pipe");
  unlink(sock);
  pthread_t poller;
  t0 = now_ns();
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int log = open(logfile, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (log < 0 || dup2(log, 1) < 0 || dup2(log, 2) < 0) _exit(126);
    if (p[1] == 3) fcntl(3, F_SETFD, 0); else if (dup2(p[1], 3) < 0) _exit(126);
    execl(bin, bin, "-N", "--socket", sock, "--state-dir", dir, "--ready-fd", "3", (char *)NULL);
    _exit(127);
  }
  close(p[1]);
  pthread_create(&poller, NULL, poll_dir, NULL);
  char c; ssize_t r;
  while ((r = read(p[0], &c, 1)) < 0 && errno == EINTR) {}
  uint64_t t_ready = now_ns();
  if (r != 1 || c != '\n') {
    int status; waitpid(pid, &status, 0);
    fprintf(stderr, "xs-recovery: %s did not get ready (status %#x); its log: %s\n", bin, status, logfile);
    give_up = 1; pthread_join(poller, NULL); return 4;
  }
  uint64_t t_read = 0; char setup[32] = "-";
  if (loading) {
    uint64_t s = now_ns(); load(sock, n); sprintf(setup, "%.2f", (now_ns() - s) / 1e9);
    check(sock, n);
  } else {
    check(sock, n); t_read = now_ns();
  }
  for (int i = 0; i < 120000 && !t_snap; i++) usleep(1000);   /* the snapshot is written before ready */
  give_up = 1; pthread_join(poller, NULL);
  long rss = status_kb(pid, "VmRSS"), hwm = status_kb(pid, "VmHWM"), state = dir_kb(dir);
  struct stat st; long snap = stat(snap_path, &st) == 0 ? (long)(st.st_size / 1024) : -1;
  uint64_t s = now_ns(); int status;
  kill(pid, SIGTERM);
  if (waitpid(pid, &status, 0) < 0) die("waitpid");
  double stop = (now_ns() - s) / 1e6;
  if (!WIFEXITED(status) || WEXITSTATUS(status)) fprintf(stderr, "xs-recovery: %s stopped with status %#x\n", bin, status);
  char b1[32], b2[32], b3[32], b4[32];
  printf("%s %s %s %s %ld %ld %ld %ld %s %.1f\n", ms(t_ready, b1), ms(t_read, b2), ms(t_tmp, b3), ms(t_snap, b4),
         rss, hwm, state, snap, setup, stop);
  return 0;
}
