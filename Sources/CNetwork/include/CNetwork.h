// CNetwork: the Linux network calls a bridged vif needs (tap devices, links, bridge ports),
// as ioctls on small structs with unions that Swift cannot build comfortably. Each returns
// 0 (or the value asked for) on success, or -errno.
#ifndef CNETWORK_H
#define CNETWORK_H
/// Opens /dev/net/tun and attaches it to a new tap device `name` (TUNSETIFF IFF_TAP|IFF_NO_PI),
/// close-on-exec. Not persistent: the device goes when the last descriptor on it closes.
int cnet_tap_open(const char *name);
/// The link's MTU (SIOCGIFMTU).
int cnet_link_mtu(const char *name);
/// Sets the link's MTU (SIOCSIFMTU).
int cnet_link_set_mtu(const char *name, int mtu);
/// Sets the link's Ethernet address (SIOCSIFHWADDR) to the six bytes at `address`.
int cnet_link_set_address(const char *name, const unsigned char *address);
/// Sets the link up (SIOCSIFFLAGS with IFF_UP added).
int cnet_link_set_up(const char *name);
/// Makes `port` a port of bridge `bridge` (SIOCBRADDIF), or no longer one (SIOCBRDELIF).
int cnet_bridge_add_port(const char *bridge, const char *port);
int cnet_bridge_del_port(const char *bridge, const char *port);
#endif
