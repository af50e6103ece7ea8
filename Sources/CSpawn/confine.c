// Confinement of a daemon between fork and exec, and the kill-by-uid reaper. Runs in a
// forked child (sometimes sharing the monitor's memory): raw system calls only — glibc's
// set*id wrappers would try to synchronise threads this process does not have.
#define _GNU_SOURCE
#include "internal.h"
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>

#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_RAISE 2
#endif

static const int kept_capabilities[] = {CAP_SYS_CHROOT, CAP_SETUID, CAP_SETGID};
#define KEPT_COUNT ((int)(sizeof kept_capabilities / sizeof kept_capabilities[0]))

static int is_kept(int cap) {
  for (int i = 0; i < KEPT_COUNT; i++) if (kept_capabilities[i] == cap) return 1;
  return 0;
}

int cspawn_confine(const cspawn_confinement *c) {
  if (c->group_count < 0 || c->group_count > CSPAWN_MAX_GROUPS) { errno = E2BIG; return -1; }
  if (unshare(CLONE_NEWNS | CLONE_NEWIPC) != 0) return -1;
  // Nothing mounted in here reaches the host, and nothing the host mounts later comes in.
  if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) return -1;

  // libxl's limits for a restricted device model (libxl_dm.c).
  struct { int resource; rlim_t limit; } limits[] = {
    {RLIMIT_FSIZE, 256 * 1024}, {RLIMIT_CORE, 0}, {RLIMIT_MSGQUEUE, 0}, {RLIMIT_LOCKS, 0}, {RLIMIT_MEMLOCK, 0},
  };
  for (unsigned i = 0; i < sizeof limits / sizeof limits[0]; i++) {
    struct rlimit r = {limits[i].limit, limits[i].limit};
    if (setrlimit(limits[i].resource, &r) != 0) return -1;
  }
  // Past the size limit a write fails with EFBIG instead of killing the device model with
  // SIGXFSZ (a chatty guest's console log would otherwise end its QEMU at 256 KiB); an
  // ignored disposition survives exec.
  struct sigaction ignore;
  memset(&ignore, 0, sizeof ignore);
  ignore.sa_handler = SIG_IGN;
  if (sigaction(SIGXFSZ, &ignore, NULL) != 0) return -1;

  // Every capability but the three -chroot and -runas need leaves the bounding set.
  for (int cap = 0; cap < 64; cap++) {
    if (is_kept(cap)) continue;
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) return -1;
  }
  if (syscall(SYS_setgroups, (size_t)c->group_count, c->groups) != 0) return -1;
  if (syscall(SYS_setresgid, c->gid, c->gid, c->gid) != 0) return -1;

  // Ambient capabilities must be permitted and inheritable.
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  if (syscall(SYS_capget, &header, data) != 0) return -1;
  data[0].inheritable = 0;
  data[1].inheritable = 0;
  for (int i = 0; i < KEPT_COUNT; i++) data[kept_capabilities[i] / 32].inheritable |= 1u << (kept_capabilities[i] % 32);
  if (syscall(SYS_capset, &header, data) != 0) return -1;

  // Real uid 0 keeps the permitted set (and so the ambient one); the effective uid, with
  // which every file is opened, is the device model's.
  if (syscall(SYS_setresuid, (uid_t)0, c->uid, c->uid) != 0) return -1;
  for (int i = 0; i < KEPT_COUNT; i++) {
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, kept_capabilities[i], 0, 0) != 0) return -1;
  }
  return 0;
}

static void reaper_main(uid_t uid, uid_t reaper_uid, const char *lock_path) __attribute__((noreturn));
static void reaper_main(uid_t uid, uid_t reaper_uid, const char *lock_path) {
  // Every signal stays blocked (the forker blocked them): no handler of the caller's runs.
  int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) _exit(100 + errno);
  while (flock(fd, LOCK_EX) != 0) if (errno != EINTR) _exit(100 + errno);
  // Real uid: the reaper's own, so the device model cannot signal it; effective: the device
  // model's, so that kill(-1) reaches exactly that uid's processes.
  if (syscall(SYS_setresuid, reaper_uid, uid, (uid_t)0) != 0) _exit(100 + errno);
  if (kill(-1, SIGKILL) != 0 && errno != ESRCH) _exit(100 + errno);
  _exit(0);  // the lock goes with us
}

pid_t cspawn_kill_uid(uid_t uid, uid_t reaper_uid, const char *lock_path, int *pidfd) {
  sigset_t all, saved;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &saved);
  pid_t pid = cspawn_fork(CSPAWN_FORK_CLONE3, pidfd);
  if (pid < 0 && errno == ENOSYS) pid = cspawn_fork(CSPAWN_FORK_PLAIN, pidfd);
  if (pid == 0) reaper_main(uid, reaper_uid, lock_path);
  int error = errno;
  pthread_sigmask(SIG_SETMASK, &saved, NULL);
  errno = error;
  return pid;
}
