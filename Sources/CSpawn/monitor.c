// The startup monitor: the intermediate process of the double fork. It forks the daemon,
// reports its pid (with a pidfd) to the caller, and until the caller detaches it watches
// both: a daemon death is reported with its wait status; a caller that goes away (its end
// of the control socket closes) takes the daemon with it, so no unrecorded daemon lives on.
// Runs in a forked child: async-signal-safe system calls only.
#define _GNU_SOURCE
#include "internal.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void report(int control, int32_t kind, pid_t pid, int32_t value, int32_t stage, uint64_t start_time,
                   int pidfd) {
  cspawn_report r;
  memset(&r, 0, sizeof r);
  r.kind = kind;
  r.pid = pid;
  r.value = value;
  r.stage = stage;
  r.start_time = start_time;
  struct iovec iov = {.iov_base = &r, .iov_len = sizeof r};
  union {
    char buffer[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } control_data;
  struct msghdr message;
  memset(&message, 0, sizeof message);
  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  if (pidfd >= 0) {
    memset(&control_data, 0, sizeof control_data);
    message.msg_control = control_data.buffer;
    message.msg_controllen = sizeof control_data.buffer;
    struct cmsghdr *header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(header), &pidfd, sizeof(int));
  }
  // MSG_NOSIGNAL: a caller that is gone must not kill us with SIGPIPE before we clean up.
  while (sendmsg(control, &message, MSG_NOSIGNAL) < 0 && errno == EINTR) {}
}

static void fail(int control, int32_t stage, int error) __attribute__((noreturn));
static void fail(int control, int32_t stage, int error) {
  report(control, CSPAWN_REPORT_FAILED, 0, error, stage, 0, -1);
  _exit(1);
}

static int reap(pid_t pid, int options) {
  int status = 0;
  pid_t got;
  while ((got = waitpid(pid, &status, options)) < 0 && errno == EINTR) {}
  return got == pid ? status : -1;
}

static void exit_with_daemon_killed(pid_t pid) __attribute__((noreturn));
static void exit_with_daemon_killed(pid_t pid) {
  kill(pid, SIGKILL);  // our own unreaped child: the pid cannot have been reused
  reap(pid, 0);
  _exit(0);
}

struct daemon_start {
  const cspawn_exec_request *request;
  int errno_read;
  int errno_write;
};

static int daemon_main(void *argument) {
  struct daemon_start *start = argument;
  close(start->errno_read);
  cspawn_exec(start->request, start->errno_write);
}

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif

// Sanitizer runtimes keep per-process state (ASan's shadow memory and stack bounds, TSan's
// thread state) that a CLONE_VM child running instrumented code on a stack of its own
// corrupts in the monitor: ASan warns that it ignores __asan_handle_no_return and may report
// falsely afterwards, TSan fails an internal CHECK. Sanitized builds therefore fork the daemon
// with the clone3/fork fallback below (the same outcome, page tables copied).
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define CSPAWN_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define CSPAWN_SANITIZED 1
#endif

// Forks the daemon as posix_spawn does: CLONE_VM|CLONE_VFORK on a stack of its own, so
// no page tables are copied and the monitor sleeps until the exec is done. The child only
// runs cspawn_exec (system calls, its own stack). -1 with errno if that cannot be had.
static pid_t fork_daemon_vfork(struct daemon_start *start, int *pidfd) {
#ifdef CSPAWN_SANITIZED
  (void)start;
  *pidfd = -1;
  errno = ENOSYS;
  return -1;
#else
  const size_t size = 256 * 1024;
  void *stack = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) return -1;
  int flags = CLONE_VM | CLONE_VFORK | SIGCHLD;
  pid_t pid = clone(daemon_main, (char *)stack + size, flags | CLONE_PIDFD, start, pidfd);
  if (pid < 0 && errno == EINVAL) {
    *pidfd = -1;  // no CLONE_PIDFD before Linux 5.2
    pid = clone(daemon_main, (char *)stack + size, flags, start, NULL);
  }
  int error = errno;
  munmap(stack, size);
  errno = error;
  return pid;
#endif
}

void cspawn_monitor_main(const cspawn_monitor_request *request) {
  int control = request->control_fd;

  // Default dispositions; SIGCHLD stays blocked for the signalfd, the rest unblocked.
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; sig++) {
    if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, NULL);
  }
  sigset_t child_signal;
  sigemptyset(&child_signal);
  sigaddset(&child_signal, SIGCHLD);
  sigprocmask(SIG_SETMASK, &child_signal, NULL);

  // Out of the caller's session and process group: a ^C meant for the caller must not
  // kill the monitor and leave the daemon unwatched.
  setsid();

  // Keep only the control socket and what the daemon is to receive: the caller's other
  // descriptors (other spawns' control sockets and readiness pipes) must not stay open here.
  int keep[CSPAWN_MAX_FDS + 1];
  int count = request->exec.fd_count > CSPAWN_MAX_FDS ? CSPAWN_MAX_FDS : request->exec.fd_count;
  keep[0] = control;
  for (int i = 0; i < count; i++) keep[i + 1] = request->exec.fds[i].source;
  cspawn_close_other_fds(keep, count + 1, 0);

  int signals = signalfd(-1, &child_signal, SFD_CLOEXEC | SFD_NONBLOCK);
  if (signals < 0) fail(control, CSPAWN_STAGE_SIGNALFD, errno);
  int errno_pipe[2];
  if (pipe2(errno_pipe, O_CLOEXEC) != 0) fail(control, CSPAWN_STAGE_PIPE, errno);

  int pidfd = -1;
  struct daemon_start start = {.request = &request->exec, .errno_read = errno_pipe[0], .errno_write = errno_pipe[1]};
  pid_t pid = fork_daemon_vfork(&start, &pidfd);
  if (pid < 0) {
    pid = cspawn_fork(CSPAWN_FORK_CLONE3, &pidfd);
    if (pid < 0 && errno == ENOSYS) pid = cspawn_fork(CSPAWN_FORK_PLAIN, &pidfd);
    if (pid < 0) fail(control, CSPAWN_STAGE_FORK, errno);
    if (pid == 0) daemon_main(&start);
  }
  close(errno_pipe[1]);
  // The daemon has its descriptors now. Holding them here would keep, say, a readiness
  // pipe's write end open, and its end of stream (the daemon closed it) would never come.
  for (int i = 0; i < count; i++) close(request->exec.fds[i].source);
  // The daemon is our unreaped child, so this pidfd (and the start time) cannot name
  // another process.
  if (pidfd < 0) pidfd = cspawn_pidfd_open(pid, 0);
  uint64_t start_time = 0;
  cspawn_read_start_time(pid, &start_time);
  report(control, CSPAWN_REPORT_STARTED, pid, 0, 0, start_time, pidfd);
  if (pidfd >= 0) close(pidfd);

  int exec_errno = 0;
  ssize_t n = cspawn_read_full(errno_pipe[0], &exec_errno, sizeof exec_errno);
  close(errno_pipe[0]);
  if (n == (ssize_t)sizeof exec_errno) {
    reap(pid, 0);
    report(control, CSPAWN_REPORT_EXEC_FAILED, pid, exec_errno, 0, 0, -1);
    _exit(0);
  }

  int stopping = 0;
  uint64_t kill_at = 0;  // monotonic ns; 0: no SIGKILL pending
  for (;;) {
    struct pollfd fds[2] = {{.fd = control, .events = POLLIN}, {.fd = signals, .events = POLLIN}};
    int timeout = -1;
    if (kill_at) {
      uint64_t now = cspawn_monotonic_ns();
      timeout = now >= kill_at ? 0 : (int)((kill_at - now + 999999) / 1000000);
    }
    if (poll(fds, 2, timeout) < 0) {
      if (errno == EINTR) continue;
      exit_with_daemon_killed(pid);
    }
    // The daemon's end first: its wait status is the most precise news.
    if (fds[1].revents) {
      struct signalfd_siginfo info;
      while (read(signals, &info, sizeof info) > 0) {}
      int status = reap(pid, WNOHANG);
      if (status != -1) {
        report(control, CSPAWN_REPORT_EXITED, pid, status, 0, 0, -1);
        _exit(0);
      }
    }
    if (kill_at && cspawn_monotonic_ns() >= kill_at) {
      kill(pid, SIGKILL);
      kill_at = 0;
    }
    if (fds[0].revents) {
      cspawn_control message;
      ssize_t got = recv(control, &message, sizeof message, MSG_DONTWAIT);
      if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (got == (ssize_t)sizeof message && message.command == CSPAWN_CONTROL_DETACH) _exit(0);
      if (got == (ssize_t)sizeof message && message.command == CSPAWN_CONTROL_STOP) {
        if (!stopping) {
          stopping = 1;
          kill(pid, SIGTERM);
          int grace = message.grace_ms < 0 ? 0 : message.grace_ms;
          kill_at = cspawn_monotonic_ns() + (uint64_t)grace * 1000000u;
        }
        continue;
      }
      if (got == (ssize_t)sizeof message) continue;  // an unknown command: ignore it
      // End of stream or an error: the caller is gone or gave the spawn up.
      exit_with_daemon_killed(pid);
    }
  }
}
