#if canImport(Glibc)
import Glibc
#endif
import XenStore

extension XenStoreError.Code {
  /// A state-directory file is damaged or inconsistent: the daemon refuses to serve from it.
  public static let stateCorrupted = XenStoreError.Code(name: "state-corrupted")
  /// A system call on the state directory failed (the errno says which).
  public static let stateIOFailed = XenStoreError.Code(name: "state-io-failed")
  /// Another xenstored holds the state directory.
  public static let stateLocked = XenStoreError.Code(name: "state-locked")
}

extension XenStoreError {
  /// A failed system call on `path`, with the current errno.
  static func stateIO(_ what: String, _ path: String, errno code: Int32 = Glibc.errno) -> XenStoreError {
    XenStoreError(.stateIOFailed, "\(what) \(path): \(String(cString: strerror(code)))", errno: code)
  }

  /// Intact records that describe a state the daemon cannot have made (a broken tree).
  static func stateImpossible(_ what: String, _ problems: [String], directory: String) -> XenStoreError {
    let shown = problems.prefix(3).joined(separator: "; ") + (problems.count > 3 ? "; …" : "")
    return XenStoreError(.stateCorrupted, """
      \(what) gives a state xenstored cannot have made (\(shown)); refusing to start rather than \
      serve it. `xenstored --state-dir \(directory) --recover` repairs the tree and sets the files aside.
      """)
  }

  /// Damage in `file` at byte `offset`, with the way out.
  static func stateDamage(_ file: String, offset: Int, _ reason: String, directory: String) -> XenStoreError {
    XenStoreError(.stateCorrupted, """
      \(file) is damaged at byte offset \(offset) (\(reason)); refusing to start rather than serve \
      wrong data. `xenstored --state-dir \(directory) --recover` keeps everything before the damage \
      and sets the damaged files aside.
      """)
  }
}
