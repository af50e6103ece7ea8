#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import XenStore

/// `xenstore ls [-f] [-p] [path...]`: the tree below each path (default `/`), one node per
/// line with its value, indented by depth; `-f` prints whole paths, `-p` permissions.
struct Ls: AsyncParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Print the tree below paths with values.")

  @Flag(name: [.customShort("f"), .customLong("flat")], help: "Print whole paths instead of indented names.")
  var flat = false

  @Flag(name: .shortAndLong, help: "Print each node's permissions.")
  var prefix = false

  @OptionGroup var common: CommonOptions

  @Argument(help: "The paths to list (default /).")
  var paths: [String] = []

  func run() async throws {
    var layout = flat ? ListingLayout.flat(showPermissions: prefix) : ListingLayout(showPermissions: prefix)
    // As in xenstore-utils, a terminal's width applies even with -f.
    var size = winsize()
    if ioctl(1, UInt(TIOCGWINSZ), &size) == 0 { layout.maxWidth = Int32(size.ws_col) - 2 }
    try await Session.run(inTransaction: false) { store, output in
      let lister = TreeLister(store: store, layout: layout)
      do {
        for path in paths.isEmpty ? ["/"] : paths { try await lister.list(path, depth: 0) }
      } catch {
        // What was printed before a fatal error stays printed, as stdio flushes it at exit.
        Terminal.write(lister.output)
        throw error
      }
      output = lister.output
      return 0
    }
  }
}

/// Walks a tree depth first as xenstore-utils' `do_ls` does: DIRECTORY, then per child READ
/// (and GET_PERMS), no transaction.
final class TreeLister {
  let store: any XenStoreOperations
  let layout: ListingLayout
  private(set) var output: [UInt8] = []

  init(store: any XenStoreOperations, layout: ListingLayout) {
    self.store = store
    self.layout = layout
  }

  func list(_ path: String, depth: Int) async throws {
    let names: [String]
    do {
      names = try await store.directory(path)
    } catch let error as XenStoreError where depth > 0 && error.code == .ENOENT {
      return  // removed while we walked: move on
    } catch {
      throw ToolExit.failure("xs_directory (\(path))", error)
    }
    for name in names {
      let child = path + (path.hasSuffix("/") ? "" : "/") + name
      // Longer than the C tool's buffer: it reads nothing and prints ":".
      let value = child.utf8.count < 4096 ? try? await store.readBytes(child) : nil
      output += layout.entry(name: Array(name.utf8), path: Array(child.utf8), depth: depth, value: value)
      if layout.showPermissions {
        do {
          let permissions = try await store.getPermissions(child)
          output += layout.permissions(permissions.entries.map(\.description))
        } catch {
          Terminal.warn("\ncould not access permissions for \(name): \(reason(error))")
        }
      }
      output.append(UInt8(ascii: "\n"))
      try await list(child, depth: depth + 1)
    }
  }
}
