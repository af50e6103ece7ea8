#include "CNetwork.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static int name_request(struct ifreq *request, const char *name) {
  memset(request, 0, sizeof *request);
  if (strlen(name) >= IFNAMSIZ) return -ENAMETOOLONG;
  strncpy(request->ifr_name, name, IFNAMSIZ - 1);
  return 0;
}

/// Runs one SIOC* request on a throwaway datagram socket (what ip(8) and brctl do).
static int socket_ioctl(unsigned long call, struct ifreq *request) {
  int fd = socket(AF_LOCAL, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int rc = ioctl(fd, call, request) < 0 ? -errno : 0;
  close(fd);
  return rc;
}

int cnet_tap_open(const char *name) {
  struct ifreq request;
  int rc = name_request(&request, name);
  if (rc) return rc;
  request.ifr_flags = IFF_TAP | IFF_NO_PI;
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0) return -errno;
  if (ioctl(fd, TUNSETIFF, &request) < 0) {
    rc = -errno;
    close(fd);
    return rc;
  }
  return fd;
}

int cnet_link_mtu(const char *name) {
  struct ifreq request;
  int rc = name_request(&request, name);
  if (rc) return rc;
  rc = socket_ioctl(SIOCGIFMTU, &request);
  return rc ? rc : request.ifr_mtu;
}

int cnet_link_set_mtu(const char *name, int mtu) {
  struct ifreq request;
  int rc = name_request(&request, name);
  if (rc) return rc;
  request.ifr_mtu = mtu;
  return socket_ioctl(SIOCSIFMTU, &request);
}

int cnet_link_set_address(const char *name, const unsigned char *address) {
  struct ifreq request;
  int rc = name_request(&request, name);
  if (rc) return rc;
  request.ifr_hwaddr.sa_family = ARPHRD_ETHER;
  memcpy(request.ifr_hwaddr.sa_data, address, 6);
  return socket_ioctl(SIOCSIFHWADDR, &request);
}

int cnet_link_set_up(const char *name) {
  struct ifreq request;
  int rc = name_request(&request, name);
  if (rc) return rc;
  if ((rc = socket_ioctl(SIOCGIFFLAGS, &request))) return rc;
  request.ifr_flags |= IFF_UP;
  return socket_ioctl(SIOCSIFFLAGS, &request);
}

static int bridge_port(unsigned long call, const char *bridge, const char *port) {
  struct ifreq request;
  int rc = name_request(&request, bridge);
  if (rc) return rc;
  unsigned index = if_nametoindex(port);
  if (index == 0) return -errno;
  request.ifr_ifindex = (int)index;
  return socket_ioctl(call, &request);
}

int cnet_bridge_add_port(const char *bridge, const char *port) { return bridge_port(SIOCBRADDIF, bridge, port); }

int cnet_bridge_del_port(const char *bridge, const char *port) { return bridge_port(SIOCBRDELIF, bridge, port); }
