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

// SwiftPM links every executable with its module's main as `main`, which hides libFuzzer's
// own; so this main starts libFuzzer's driver itself (flags and corpus directories as usual).
var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv, xenStoreFuzzerTestOneInput))
