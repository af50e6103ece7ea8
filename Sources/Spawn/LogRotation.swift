import RotatingLogs

/// libxl's rotation of daemon logs (`log` → `log.1` … `log.10`): see `RotatingLogs.LogRotation`.
/// It lives in its own small module so that `xenstored` rotates its log without the spawn library.
public typealias LogRotation = RotatingLogs.LogRotation
