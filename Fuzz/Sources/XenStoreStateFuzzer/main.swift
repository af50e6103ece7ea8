import FuzzSupport

// Through a closure: in a debug build, taking the @_cdecl function's address here would emit
// a second LLVMFuzzerTestOneInput in this file.
runLibFuzzer { data, size in xenStoreStateFuzzerTestOneInput(data, size) }
