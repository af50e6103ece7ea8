// The fork primitive and the callers of it that return to Swift.
#define _GNU_SOURCE
#include "internal.h"
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif

// The kernel's struct clone_args (linux/sched.h clashes with <sched.h>), first version.
struct cspawn_clone_args {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};

pid_t cspawn_fork(int method, int *pidfd) {
  *pidfd = -1;
  if (method == CSPAWN_FORK_CLONE3) {
    int fd = -1;
    struct cspawn_clone_args args;
    memset(&args, 0, sizeof args);
    args.flags = CLONE_PIDFD;
    args.pidfd = (uint64_t)(uintptr_t)&fd;
    args.exit_signal = SIGCHLD;
    // Raw clone3, not glibc's fork: no atfork handlers run in the child, which may hold
    // locks other threads had; the child only makes system calls.
    long pid = syscall(SYS_clone3, &args, sizeof args);
    if (pid > 0) *pidfd = fd;
    return (pid_t)pid;
  }
  // clone with just the exit signal is fork(2), on every architecture's argument order.
  return (pid_t)syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
}

pid_t cspawn_start_monitor(const cspawn_monitor_request *request, int method, int *pidfd) {
  // Block every signal across the fork so no handler of the caller's runs in the child
  // before it has reset them; the parent restores its mask at once.
  sigset_t all, saved;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &saved);
  pid_t pid = cspawn_fork(method, pidfd);
  if (pid == 0) cspawn_monitor_main(request);
  int error = errno;
  pthread_sigmask(SIG_SETMASK, &saved, NULL);
  errno = error;
  return pid;
}

pid_t cspawn_spawn(const cspawn_exec_request *request, int method, int *pidfd, int *exec_errno) {
  *exec_errno = 0;
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return -1;
  sigset_t all, saved;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &saved);
  pid_t pid = cspawn_fork(method, pidfd);
  if (pid == 0) {
    close(pipe_fds[0]);
    cspawn_exec(request, pipe_fds[1]);
  }
  int error = errno;
  pthread_sigmask(SIG_SETMASK, &saved, NULL);
  close(pipe_fds[1]);
  if (pid < 0) {
    close(pipe_fds[0]);
    errno = error;
    return -1;
  }
  // EOF: the exec succeeded (the pipe is close-on-exec); 4 bytes: its errno.
  int child_errno = 0;
  ssize_t n = cspawn_read_full(pipe_fds[0], &child_errno, sizeof child_errno);
  close(pipe_fds[0]);
  if (n == (ssize_t)sizeof child_errno) {
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    if (*pidfd >= 0) close(*pidfd);
    *pidfd = -1;
    *exec_errno = child_errno;
    errno = child_errno;
    return -1;
  }
  return pid;
}
