// A bare QMP client, the yardstick for `xl network-attach`: connects to QEMU's QMP socket,
// negotiates, adds a user-mode netdev and a NIC on it (the same two commands xl sends for a
// NIC without a bridge) and exits once QEMU has answered device_add.
//   cc -O2 -o qmp-device-add scripts/bench/qmp-device-add.c
//   qmp-device-add SOCKET [ID]   (netdev bench<ID>, NIC benchnic<ID>; ID: this process's pid)
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static char buffer[65536];
static size_t filled;

// Reads until a line holding a reply ("return" or "error"); events are skipped. 0 on a return.
static int reply(int fd) {
  for (;;) {
    char *newline;
    while ((newline = memchr(buffer, '\n', filled))) {
      size_t length = (size_t)(newline - buffer) + 1;
      int isReturn = memmem(buffer, length, "\"return\"", 8) != NULL;
      int isError = memmem(buffer, length, "\"error\"", 7) != NULL;
      int isGreeting = memmem(buffer, length, "\"QMP\"", 5) != NULL;
      if (isError) fprintf(stderr, "%.*s", (int)length, buffer);
      memmove(buffer, buffer + length, filled - length);
      filled -= length;
      if (isReturn || isError || isGreeting) return isError;
    }
    ssize_t n = read(fd, buffer + filled, sizeof buffer - filled);
    if (n <= 0) return 1;
    filled += (size_t)n;
  }
}

static int command(int fd, const char *text) {
  if (write(fd, text, strlen(text)) != (ssize_t)strlen(text)) return 1;
  return reply(fd);
}

int main(int argc, char **argv) {
  if (argc != 2 && argc != 3) { fprintf(stderr, "usage: %s SOCKET [ID]\n", argv[0]); return 64; }
  char id[32];
  snprintf(id, sizeof id, "%s", argc == 3 ? argv[2] : "");
  if (argc == 2) snprintf(id, sizeof id, "%d", (int)getpid());
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un address = {.sun_family = AF_UNIX};
  strncpy(address.sun_path, argv[1], sizeof address.sun_path - 1);
  if (connect(fd, (struct sockaddr *)&address, sizeof address) != 0) { perror("connect"); return 1; }
  char text[512];
  if (reply(fd) || command(fd, "{\"execute\":\"qmp_capabilities\"}\n")) return 1;
  snprintf(text, sizeof text, "{\"execute\":\"netdev_add\",\"arguments\":{\"type\":\"user\",\"id\":\"bench%s\"}}\n", id);
  if (command(fd, text)) return 1;
  snprintf(text, sizeof text,
           "{\"execute\":\"device_add\",\"arguments\":{\"driver\":\"rtl8139\",\"id\":\"benchnic%s\",\"netdev\":\"bench%s\","
           "\"mac\":\"00:16:3e:7f:00:%02x\",\"romfile\":\"\"}}\n",
           id, id, atoi(id) & 0xff);
  return command(fd, text);
}
