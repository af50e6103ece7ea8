#if canImport(Glibc)
import Glibc
#endif
import XenStore

extension XenstoredError {
  /// A failed system call on `path`, with the current errno.
  static func stateIO(_ what: String, _ path: String, errno code: Int32 = Glibc.errno) -> XenstoredError {
    XenstoredError(.stateIOFailed, "\(what) \(path): \(String(cString: strerror(code)))", errno: code)
  }

  /// Intact records that describe a state the daemon cannot have made (a broken tree).
  static func stateImpossible(_ what: String, _ problems: [String], directory: String) -> XenstoredError {
    let shown = problems.prefix(3).joined(separator: "; ") + (problems.count > 3 ? "; …" : "")
    return XenstoredError(.stateCorrupted, """
      \(what) gives a state xenstored cannot have made (\(shown)); refusing to start rather than \
      serve it. `xenstored --state-dir \(directory) --recover` repairs the tree and sets the files aside.
      """)
  }

  /// Damage in `file` at byte `offset`, with the way out.
  static func stateDamage(_ file: String, offset: Int, _ reason: String, directory: String) -> XenstoredError {
    XenstoredError(.stateCorrupted, """
      \(file) is damaged at byte offset \(offset) (\(reason)); refusing to start rather than serve \
      wrong data. `xenstored --state-dir \(directory) --recover` keeps everything before the damage \
      and sets the damaged files aside.
      """)
  }
}
