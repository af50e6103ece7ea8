// CSpawn: the C side of spawning. Everything that runs in a forked child is here, and
// is async-signal-safe: no malloc, no locks, no stdio, only system calls and plain loops.
// Swift code never runs in a forked child. All symbols are prefixed cspawn_.
#ifndef CSPAWN_H
#define CSPAWN_H
#include <stdint.h>
#include <sys/types.h>
#include <signal.h>

/// The most descriptors one spawn may pass (stdio included); the child sorts them on its stack.
#define CSPAWN_MAX_FDS 64

/// How to fork: `clone3(CLONE_PIDFD)` (a pidfd with no race), or plain `clone(SIGCHLD)`.
enum {
  CSPAWN_FORK_CLONE3 = 0,
  CSPAWN_FORK_PLAIN = 1,
};

/// One descriptor the daemon receives: the caller's `source` becomes `target` in the daemon.
typedef struct {
  int source;
  int target;
} cspawn_fd_mapping;

/// A confined daemon (a restricted device model, as libxl's dm_restrict): applied in the
/// child after the descriptors are arranged, right before exec, all by raw system calls.
/// - new mount (private propagation) and IPC namespaces;
/// - libxl's rlimits: FSIZE 256 KiB, CORE 0, MSGQUEUE 0, LOCKS 0, MEMLOCK 0;
/// - the capability bounding set cut to CAP_SYS_CHROOT, CAP_SETUID and CAP_SETGID;
/// - supplementary groups `groups`, real/effective/saved gid `gid`;
/// - real uid 0, effective and saved uid `uid`, with the three capabilities above ambient:
///   the daemon opens every file as `uid` from exec on, yet may still chroot and change to
///   `uid` for good (QEMU's -chroot and -runas), which clears every capability.
typedef struct {
  uid_t uid;
  gid_t gid;
  const gid_t *groups;  // supplementary groups (at most CSPAWN_MAX_GROUPS)
  int group_count;
} cspawn_confinement;

#define CSPAWN_MAX_GROUPS 16

/// What the exec primitive does in the child. Pointers are read in the child's copy of the
/// caller's memory, so they only need to stay valid until the fork call returns.
typedef struct {
  const char *path;               // executable, absolute or relative to the working directory
  char *const *argv;              // NULL-terminated
  char *const *envp;              // NULL-terminated
  const char *working_directory;  // NULL: inherit
  const cspawn_fd_mapping *fds;   // must include targets 0, 1 and 2; targets unique
  int fd_count;                   // at most CSPAWN_MAX_FDS
  int new_session;                // setsid() before exec
  const cspawn_confinement *confinement;  // NULL: none
  int set_niceness;               // setpriority(PRIO_PROCESS, 0, niceness) before exec
  int niceness;
} cspawn_exec_request;

// ---- Fork and exec, apart ----

/// Forks with `clone3(CLONE_PIDFD)` or `clone(SIGCHLD)` (raw system calls: no atfork handlers
/// run). Returns the pid in the parent (and the pidfd in *pidfd, or -1), 0 in the child,
/// -1 with errno on failure (ENOSYS: this kernel has no clone3).
/// Returns in the child: only C that is async-signal-safe may follow. Never call from Swift.
pid_t cspawn_fork(int method, int *pidfd);

/// Prepares the child and execs: resets every signal disposition and the mask, setsid,
/// arranges the descriptors (everything not passed is close-on-exec), chdir, execve.
/// On failure writes errno (4 bytes) to `errno_fd` and _exit(127)s. Never returns.
/// Async-signal-safe; call only in a freshly forked child.
void cspawn_exec(const cspawn_exec_request *request, int errno_fd) __attribute__((noreturn));

/// A plain fork+exec: forks, execs `request` in the child, and blocks until the exec is done.
/// Returns the pid, or -1 with errno (the fork or pipe failed), or -1 with errno and
/// *exec_errno set when exec failed (the child is then already reaped).
/// Blocks the calling thread for the exec: for benchmarks, fixtures and other plain threads.
pid_t cspawn_spawn(const cspawn_exec_request *request, int method, int *pidfd, int *exec_errno);

// ---- The startup monitor (the intermediate process of a double fork) ----

/// A report the monitor sends to the caller, one SOCK_SEQPACKET message each.
enum {
  /// The daemon was forked: `pid`, `start_time`; a pidfd for it rides along (SCM_RIGHTS).
  CSPAWN_REPORT_STARTED = 1,
  /// exec failed with errno `value`; the daemon is reaped; the monitor exits.
  CSPAWN_REPORT_EXEC_FAILED = 2,
  /// The daemon ended with wait status `value` and is reaped; the monitor exits.
  CSPAWN_REPORT_EXITED = 3,
  /// The monitor could not set up or fork: errno `value` at `stage`; it exits.
  CSPAWN_REPORT_FAILED = 4,
};

/// Where the monitor failed (CSPAWN_REPORT_FAILED).
enum {
  CSPAWN_STAGE_SIGNALFD = 1,
  CSPAWN_STAGE_PIPE = 2,
  CSPAWN_STAGE_FORK = 3,
};

typedef struct {
  int32_t kind;
  int32_t pid;
  int32_t value;
  int32_t stage;
  uint64_t start_time;  // /proc/<pid>/stat field 22 (clock ticks after boot), for STARTED
} cspawn_report;

/// What the caller tells the monitor, one SOCK_SEQPACKET message each. Closing the control
/// socket (the caller died or dropped the spawn) makes the monitor SIGKILL and reap the daemon.
enum {
  /// The daemon confirmed: exit at once, leaving the daemon to be reparented.
  CSPAWN_CONTROL_DETACH = 1,
  /// Stop the daemon: SIGTERM, SIGKILL after `grace_ms`; report its status, exit.
  CSPAWN_CONTROL_STOP = 2,
};

typedef struct {
  int32_t command;
  int32_t grace_ms;
} cspawn_control;

typedef struct {
  cspawn_exec_request exec;
  int control_fd;  // the monitor's end of a SOCK_SEQPACKET socketpair
} cspawn_monitor_request;

/// Forks the startup monitor, which forks and execs the daemon (CLONE_VM|CLONE_VFORK on a
/// stack of its own, as posix_spawn does; plain clone3/fork if that fails) and reports on
/// `control_fd`.
/// All signals are blocked around the fork. Returns the monitor's pid (and its pidfd in
/// *pidfd, or -1) or -1 with errno. The monitor never returns into the caller's code.
pid_t cspawn_start_monitor(const cspawn_monitor_request *request, int method, int *pidfd);

/// Receives one report without blocking (recvmsg, MSG_DONTWAIT|MSG_CMSG_CLOEXEC).
/// Returns its size, 0 at end of stream, or -1 with errno (EAGAIN: none yet).
/// A passed pidfd lands in *pidfd (else -1).
ssize_t cspawn_receive_report(int fd, cspawn_report *report, int *pidfd);

/// Sends one control message without blocking or SIGPIPE. Returns 0 or -1 with errno.
int cspawn_send_control(int fd, int32_t command, int32_t grace_ms);

// ---- pidfds, waiting, identity ----

/// pipe2(O_CLOEXEC), which Glibc's module hides behind _GNU_SOURCE. 0, or -1 with errno.
int cspawn_pipe_cloexec(int fds[2]);

/// pidfd_open(2). -1 with errno (ENOSYS before Linux 5.3).
int cspawn_pidfd_open(pid_t pid, unsigned int flags);

/// pidfd_send_signal(2). -1 with errno (ESRCH: the process is gone).
int cspawn_pidfd_send_signal(int pidfd, int sig);

/// waitid(P_PIDFD) (`use_pidfd`, `id` a pidfd) or waitid(P_PID) (`id` a pid) for WEXITED,
/// plus WNOHANG if `nohang`. Returns the reaped pid with its wait-status-format status in
/// *status, 0 if nothing is ready (WNOHANG), or -1 with errno (EINVAL/ENOSYS: no P_PIDFD).
pid_t cspawn_waitid(int use_pidfd, int id, int nohang, int *status);

/// Reads field 22 (starttime) of /proc/<pid>/stat. 0, or -1 with errno (ENOENT: no process).
/// Async-signal-safe.
int cspawn_read_start_time(pid_t pid, uint64_t *start_time);

/// The monotonic clock in nanoseconds.
uint64_t cspawn_monotonic_ns(void);

// ---- Kill by uid (libxl's device-model reaper) ----

/// Forks a reaper (clone3 with a pidfd, else fork) that takes an exclusive flock on
/// `lock_path` (created 0600 if missing; it serialises reapers), sets its uids to
/// (`reaper_uid`, `uid`, 0) and sends SIGKILL to every process it may signal
/// (`kill(-1, SIGKILL)`): those whose real or saved uid is `uid` (or `reaper_uid`), never
/// itself. It exits 0, or 100 + errno of the step that failed.
/// Returns its pid (and pidfd in *pidfd, or -1), or -1 with errno. The caller reaps it.
pid_t cspawn_kill_uid(uid_t uid, uid_t reaper_uid, const char *lock_path, int *pidfd);

// ---- wait status and names ----

int cspawn_wifexited(int status);
int cspawn_wexitstatus(int status);
int cspawn_wifsignaled(int status);
int cspawn_wtermsig(int status);
int cspawn_wcoredump(int status);

/// "ENOENT" for ENOENT (strerrorname_np), NULL if unknown.
const char *cspawn_errno_name(int error);
/// "SEGV" for SIGSEGV (sigabbrev_np), NULL if unknown.
const char *cspawn_signal_name(int sig);

#endif
