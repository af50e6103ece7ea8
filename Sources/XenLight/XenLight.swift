// XenLight
