// Thin wrappers for the system calls and macros Swift cannot reach directly.
#define _GNU_SOURCE
#include "internal.h"
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

int cspawn_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int cspawn_pidfd_open(pid_t pid, unsigned int flags) { return (int)syscall(SYS_pidfd_open, pid, flags); }

int cspawn_pidfd_send_signal(int pidfd, int sig) {
  return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

pid_t cspawn_waitid(int use_pidfd, int id, int nohang, int *status) {
  siginfo_t info;
  memset(&info, 0, sizeof info);
  int options = WEXITED | (nohang ? WNOHANG : 0);
  int rc;
  do {
    rc = waitid(use_pidfd ? (idtype_t)P_PIDFD : P_PID, (id_t)id, &info, options);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) return -1;
  if (info.si_pid == 0) return 0;
  // Back into the wait-status format waitpid uses, so one decoder serves both.
  switch (info.si_code) {
  case CLD_EXITED: *status = (info.si_status & 0xff) << 8; break;
  case CLD_KILLED: *status = info.si_status & 0x7f; break;
  case CLD_DUMPED: *status = (info.si_status & 0x7f) | 0x80; break;
  default: *status = 0; break;
  }
  return info.si_pid;
}

ssize_t cspawn_receive_report(int fd, cspawn_report *report, int *pidfd) {
  *pidfd = -1;
  struct iovec iov = {.iov_base = report, .iov_len = sizeof *report};
  union {
    char buffer[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } control;
  struct msghdr message;
  memset(&message, 0, sizeof message);
  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  message.msg_control = control.buffer;
  message.msg_controllen = sizeof control.buffer;
  ssize_t n;
  do {
    n = recvmsg(fd, &message, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return -1;
  for (struct cmsghdr *h = CMSG_FIRSTHDR(&message); h; h = CMSG_NXTHDR(&message, h)) {
    if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS) memcpy(pidfd, CMSG_DATA(h), sizeof(int));
  }
  return n;
}

int cspawn_send_control(int fd, int32_t command, int32_t grace_ms) {
  cspawn_control message = {.command = command, .grace_ms = grace_ms};
  ssize_t n;
  do {
    n = send(fd, &message, sizeof message, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  return n == (ssize_t)sizeof message ? 0 : -1;
}

void cspawn_proc_path(char *buffer, pid_t pid, const char *leaf) {
  // No snprintf: it is not async-signal-safe.
  const char *prefix = "/proc/";
  char *p = buffer;
  while (*prefix) *p++ = *prefix++;
  char digits[16];
  int n = 0;
  unsigned int value = (unsigned int)pid;
  do { digits[n++] = (char)('0' + value % 10); value /= 10; } while (value && n < 16);
  while (n) *p++ = digits[--n];
  *p++ = '/';
  while (*leaf) *p++ = *leaf++;
  *p = 0;
}

int cspawn_read_start_time(pid_t pid, uint64_t *start_time) {
  char path[64];
  cspawn_proc_path(path, pid, "stat");
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char buffer[2048];
  ssize_t n = cspawn_read_full(fd, buffer, sizeof buffer - 1);
  close(fd);
  if (n <= 0) { errno = EIO; return -1; }
  buffer[n] = 0;
  // comm (field 2) may hold spaces and parentheses: fields count from the last ')'.
  char *p = NULL;
  for (char *c = buffer; *c; c++) if (*c == ')') p = c;
  if (!p) { errno = EINVAL; return -1; }
  p++;
  for (int field = 2; field < 22; field++) {
    while (*p == ' ') p++;
    if (field == 21) break;
    while (*p && *p != ' ') p++;
    if (!*p) { errno = EINVAL; return -1; }
  }
  uint64_t value = 0;
  if (*p < '0' || *p > '9') { errno = EINVAL; return -1; }
  for (; *p >= '0' && *p <= '9'; p++) value = value * 10 + (uint64_t)(*p - '0');
  *start_time = value;
  return 0;
}

uint64_t cspawn_monotonic_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int cspawn_wifexited(int status) { return WIFEXITED(status); }
int cspawn_wexitstatus(int status) { return WEXITSTATUS(status); }
int cspawn_wifsignaled(int status) { return WIFSIGNALED(status); }
int cspawn_wtermsig(int status) { return WTERMSIG(status); }
int cspawn_wcoredump(int status) { return WCOREDUMP(status); }

const char *cspawn_errno_name(int error) { return strerrorname_np(error); }
const char *cspawn_signal_name(int sig) { return sigabbrev_np(sig); }
