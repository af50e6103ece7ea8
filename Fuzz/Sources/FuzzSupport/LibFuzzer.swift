#if canImport(Glibc)
import Glibc
#endif

/// libFuzzer's `LLVMFuzzerRunDriver`: its command line and main loop, around a callback.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
  _ argc: UnsafeMutablePointer<Int32>,
  _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
  _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> Int32
) -> Int32

/// Runs libFuzzer (flags and corpus directories from the command line, as usual) on
/// `callback` and exits with its status.
///
/// SwiftPM links every executable with its module's main as `main`, which hides libFuzzer's
/// own; so each target's main calls this.
public func runLibFuzzer(_ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> Int32) -> Never {
  var argc = CommandLine.argc
  var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
  exit(LLVMFuzzerRunDriver(&argc, &argv, callback))
}

/// Reports a broken invariant and aborts, which libFuzzer records as a crash with its input.
public func violated(_ message: String) -> Never {
  var text = "INVARIANT VIOLATED: \(message)\n"
  text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
  abort()
}
