// CReactor: the Linux event facilities the Glibc module does not export.
#ifndef CREACTOR_H
#define CREACTOR_H
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <pthread.h>
/// pthread_setname_np, which Glibc hides behind _GNU_SOURCE.
int creactor_set_thread_name(pthread_t thread, const char *name);
#endif
