// XenStoreDaemon
