// CReactor: the Linux calls the Glibc module does not export (they need _GNU_SOURCE or are
// glibc-internal), and whether this build is sanitized.
#ifndef CREACTOR_H
#define CREACTOR_H
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <pthread.h>
/// pthread_setname_np, which Glibc hides behind _GNU_SOURCE.
int creactor_set_thread_name(pthread_t thread, const char *name);
/// accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC): a connection that is non-blocking
/// and close-on-exec from the start (no window for a concurrent fork to inherit it, and no
/// two fcntl calls after). The new descriptor, or -1 with errno as accept(2) sets it.
int creactor_accept_nonblocking(int fd);
/// sendmsg(fd, bytes, MSG_NOSIGNAL) with `descriptor` attached as SCM_RIGHTS (the CMSG_*
/// macros are not visible to Swift): how QMP's `getfd`/`add-fd` receive a descriptor. The bytes
/// sent (at least one carries the descriptor), or -1 with errno as sendmsg(2) sets it.
long creactor_send_with_descriptor(int fd, const void *bytes, unsigned long count, int descriptor);
/// Makes this process look users and groups up in /etc/passwd and /etc/group only
/// (__nss_configure_lookup): the shipped commands are static executables, and a static glibc
/// that loads another NSS module (libnss_systemd, say) crashes in it. 0, or -1 with errno.
int creactor_users_from_files(void);
/// 1 in a build under AddressSanitizer or ThreadSanitizer (whose checks run at exit), else 0.
int creactor_sanitized(void);
/// sched_getaffinity / sched_setaffinity of thread `tid` (_GNU_SOURCE too): `mask` holds
/// `bytes` bytes, bit n for CPU n. 0, or -1 with errno.
int creactor_get_affinity(int tid, unsigned char *mask, unsigned long bytes);
int creactor_set_affinity(int tid, const unsigned char *mask, unsigned long bytes);
#endif
