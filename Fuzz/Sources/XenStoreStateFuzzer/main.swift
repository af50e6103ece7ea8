#if canImport(Glibc)
import Glibc
#endif

/// libFuzzer's `LLVMFuzzerRunDriver` (see XenStoreFuzzer/main.swift for why main starts it).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
  _ argc: UnsafeMutablePointer<Int32>,
  _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
  _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> Int32
) -> Int32

/// Reports a broken invariant and aborts, which libFuzzer records as a crash with its input.
func violated(_ message: String) -> Never {
  var text = "INVARIANT VIOLATED: \(message)\n"
  text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
  abort()
}

var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in xenStoreStateFuzzerTestOneInput(data, size) })
