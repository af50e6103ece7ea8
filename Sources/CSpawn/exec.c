// The exec primitive: everything between fork and exec. Async-signal-safe only.
#define _GNU_SOURCE
#include "internal.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

ssize_t cspawn_read_full(int fd, void *buffer, size_t size) {
  size_t done = 0;
  while (done < size) {
    ssize_t n = read(fd, (char *)buffer + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return done > 0 ? (ssize_t)done : n;
    done += (size_t)n;
  }
  return (ssize_t)done;
}

static void sort_ints(int *values, int count) {
  for (int i = 1; i < count; i++) {
    int value = values[i], j = i - 1;
    while (j >= 0 && values[j] > value) { values[j + 1] = values[j]; j--; }
    values[j + 1] = value;
  }
}

static int contains(const int *values, int count, int value) {
  for (int i = 0; i < count; i++) if (values[i] == value) return 1;
  return 0;
}

static void drop_fd(int fd, int cloexec) {
  if (cloexec) fcntl(fd, F_SETFD, FD_CLOEXEC);
  else close(fd);
}

// The gaps between the sorted keepers, by close_range(2). 0, or -1 if the kernel refuses.
static int close_gaps(const int *sorted, int count, int cloexec) {
  unsigned int flags = cloexec ? CLOSE_RANGE_CLOEXEC : 0;
  unsigned int low = 0;
  for (int i = 0; i <= count; i++) {
    unsigned int high = i < count ? (unsigned int)sorted[i] : ~0U;
    if (i < count && sorted[i] < (int)low) continue;  // a duplicate
    if (high > low) {
      unsigned int last = i < count ? high - 1 : ~0U;
      if (syscall(SYS_close_range, low, last, flags) != 0) return -1;
    }
    if (i < count) low = high + 1;
  }
  return 0;
}

struct linux_dirent64 {
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

// Walks /proc/self/fd with getdents64 into a stack buffer (opendir would malloc).
static int close_listed(const int *keep, int count, int cloexec) {
  int dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return -1;
  char buffer[1024] __attribute__((aligned(8)));
  for (;;) {
    long n = syscall(SYS_getdents64, dir, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (long offset = 0; offset < n;) {
      struct linux_dirent64 *entry = (struct linux_dirent64 *)(buffer + offset);
      offset += entry->d_reclen;
      int fd = 0, digits = 0;
      for (const char *c = entry->d_name; *c >= '0' && *c <= '9'; c++, digits++) fd = fd * 10 + (*c - '0');
      if (digits == 0 || fd == dir || contains(keep, count, fd)) continue;
      drop_fd(fd, cloexec);
    }
  }
  close(dir);
  return 0;
}

void cspawn_close_other_fds(const int *keep, int count, int cloexec) {
  int sorted[CSPAWN_MAX_FDS + 2];
  if (count > CSPAWN_MAX_FDS + 2) count = CSPAWN_MAX_FDS + 2;
  for (int i = 0; i < count; i++) sorted[i] = keep[i];
  sort_ints(sorted, count);
  if (close_gaps(sorted, count, cloexec) == 0) return;
  if (close_listed(sorted, count, cloexec) == 0) return;
  struct rlimit limit;
  int max = 65536;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < (rlim_t)max) max = (int)limit.rlim_cur;
  for (int fd = 0; fd < max; fd++) if (!contains(sorted, count, fd)) drop_fd(fd, cloexec);
}

static void fail(int errno_fd, int error) __attribute__((noreturn));
static void fail(int errno_fd, int error) {
  ssize_t ignored = write(errno_fd, &error, sizeof error);
  (void)ignored;
  _exit(127);
}

void cspawn_exec(const cspawn_exec_request *request, int errno_fd) {
  // Dispositions first, while everything is still blocked (the forker blocked all signals):
  // SIG_IGN survives exec, and a handler of the parent's must never run here.
  struct sigaction dfl = {0};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; sig++) {
    if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, NULL);
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);

  if (request->new_session) setsid();  // fails only if already a group leader: harmless

  int count = request->fd_count;
  if (count > CSPAWN_MAX_FDS) fail(errno_fd, E2BIG);
  int max_target = 2;
  for (int i = 0; i < count; i++) if (request->fds[i].target > max_target) max_target = request->fds[i].target;

  // Lift the errno pipe and every source that must move above all targets first, so no
  // dup2 can overwrite a source (or the errno pipe) still to be used.
  if (errno_fd <= max_target) {
    int lifted = fcntl(errno_fd, F_DUPFD_CLOEXEC, max_target + 1);
    if (lifted < 0) fail(errno_fd, errno);
    errno_fd = lifted;
  }
  int lifted[CSPAWN_MAX_FDS];
  for (int i = 0; i < count; i++) {
    const cspawn_fd_mapping *m = &request->fds[i];
    lifted[i] = -1;
    if (m->source == m->target) continue;
    lifted[i] = fcntl(m->source, F_DUPFD_CLOEXEC, max_target + 1);
    if (lifted[i] < 0) fail(errno_fd, errno);
  }
  int targets[CSPAWN_MAX_FDS];
  for (int i = 0; i < count; i++) {
    const cspawn_fd_mapping *m = &request->fds[i];
    targets[i] = m->target;
    if (lifted[i] >= 0) {
      // dup2 clears close-on-exec on the target.
      while (dup2(lifted[i], m->target) < 0) if (errno != EINTR) fail(errno_fd, errno);
    } else if (fcntl(m->target, F_SETFD, 0) != 0) {
      // Already in place: only close-on-exec needs clearing.
      fail(errno_fd, errno);
    }
  }
  // Everything else, the errno pipe and the lifted copies included, closes at exec.
  cspawn_close_other_fds(targets, count, 1);

  if (request->working_directory && chdir(request->working_directory) != 0) fail(errno_fd, errno);
  if (request->set_niceness && setpriority(PRIO_PROCESS, 0, request->niceness) != 0) fail(errno_fd, errno);
  if (request->confinement && cspawn_confine(request->confinement) != 0) fail(errno_fd, errno);
  execve(request->path, request->argv, request->envp);
  fail(errno_fd, errno);
}
