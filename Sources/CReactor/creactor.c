#define _GNU_SOURCE
#include <nss.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include "CReactor.h"

int creactor_set_thread_name(pthread_t thread, const char *name) {
  char short_name[16];
  strncpy(short_name, name, 15);
  short_name[15] = 0;
  return pthread_setname_np(thread, short_name);
}

int creactor_accept_nonblocking(int fd) { return accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC); }

long creactor_send_with_descriptor(int fd, const void *bytes, unsigned long count, int descriptor) {
  struct iovec part = {.iov_base = (void *)bytes, .iov_len = count};
  union {
    char space[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } control;
  memset(&control, 0, sizeof control);
  struct msghdr message = {.msg_iov = &part, .msg_iovlen = 1, .msg_control = control.space, .msg_controllen = sizeof control.space};
  struct cmsghdr *header = CMSG_FIRSTHDR(&message);
  header->cmsg_level = SOL_SOCKET;
  header->cmsg_type = SCM_RIGHTS;
  header->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(header), &descriptor, sizeof(int));
  return sendmsg(fd, &message, MSG_NOSIGNAL);
}

int creactor_users_from_files(void) {
  if (__nss_configure_lookup("passwd", "files") != 0) return -1;
  return __nss_configure_lookup("group", "files");
}

int creactor_sanitized(void) {
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
  return 1;
#endif
#endif
  return 0;
}

int creactor_get_affinity(int tid, unsigned char *mask, unsigned long bytes) {
  return sched_getaffinity((pid_t)tid, (size_t)bytes, (cpu_set_t *)mask);
}

int creactor_set_affinity(int tid, const unsigned char *mask, unsigned long bytes) {
  return sched_setaffinity((pid_t)tid, (size_t)bytes, (const cpu_set_t *)mask);
}
