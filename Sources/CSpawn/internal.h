// Helpers shared by the C files; all async-signal-safe.
#ifndef CSPAWN_INTERNAL_H
#define CSPAWN_INTERNAL_H
#include "CSpawn.h"

/// Gives every descriptor not in `keep` close-on-exec (`cloexec`) or closes it (`!cloexec`).
/// Uses close_range(2) on the gaps; falls back to walking /proc/self/fd with getdents64
/// (no malloc), then to a loop up to RLIMIT_NOFILE.
void cspawn_close_other_fds(const int *keep, int count, int cloexec);

/// Writes "/proc/<pid>/<leaf>" into `buffer` (at least 64 bytes).
void cspawn_proc_path(char *buffer, pid_t pid, const char *leaf);

/// The monitor's main loop. Never returns.
void cspawn_monitor_main(const cspawn_monitor_request *request) __attribute__((noreturn));

/// read(2)/write(2) of a whole small buffer, retrying EINTR.
ssize_t cspawn_read_full(int fd, void *buffer, size_t size);
/// Applies `confinement` to the calling (freshly forked) process. 0, or -1 with errno.
int cspawn_confine(const cspawn_confinement *confinement);
#endif
