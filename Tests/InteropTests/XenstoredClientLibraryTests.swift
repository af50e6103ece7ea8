#if canImport(Glibc)
import Glibc
#endif
import Testing
import InteropSupport
import TestSupport

/// pyxs (Debian's python3-pyxs) and a C program linked with libxenstore against our daemon.
@Suite(.serialized) struct XenstoredClientLibraryTests {
  static let pyxsScript = #"""
    import os, sys, threading
    from pyxs import Client, PyXSError
    with Client(unix_socket_path=os.environ["XENSTORED_PATH"]) as c:
        c.write(b"/py/a", b"1")
        assert c.read(b"/py/a") == b"1"
        c.mkdir(b"/py/dir")
        assert sorted(c.list(b"/py")) == [b"a", b"dir"], c.list(b"/py")
        assert c.exists(b"/py/a") and not c.exists(b"/py/none")
        c.set_perms(b"/py/a", [b"n0", b"r5"])
        assert c.get_perms(b"/py/a") == [b"n0", b"r5"]
        assert c.get_domain_path(3) == b"/local/domain/3"
        assert c.is_domain_introduced(0)
        try:
            c.read(b"/py/none")
            raise SystemExit("read of a missing node succeeded")
        except PyXSError as e:
            assert e.args[0] == 2, e.args   # ENOENT
        c.transaction()
        c.write(b"/py/tx", b"in")
        assert c.commit()
        c.transaction()
        c.read(b"/py/tx")
        with Client(unix_socket_path=os.environ["XENSTORED_PATH"]) as other:
            other.write(b"/py/tx", b"outside")
        c.write(b"/py/tx", b"late")
        assert not c.commit(), "a conflicting commit must fail with EAGAIN"
        assert c.read(b"/py/tx") == b"outside"
        c.delete(b"/py/a")
        assert not c.exists(b"/py/a")
    with Client(unix_socket_path=os.environ["XENSTORED_PATH"]) as c:
        m = c.monitor()
        m.watch(b"/py/w", b"tok")
        first = next(m.wait())
        assert first == (b"/py/w", b"tok"), first
        with Client(unix_socket_path=os.environ["XENSTORED_PATH"]) as other:
            other.write(b"/py/w/x", b"v")
        second = next(m.wait())
        assert second == (b"/py/w/x", b"tok"), second
        m.unwatch(b"/py/w", b"tok")
    print("pyxs ok")
    """#

  @Test(.enabled(if: TestEnvironment.shouldRun([.pyxs])))
  func pyxsWriteReadListTransactionWatchPermissions() async throws {
    let d = try XenstoredUnderTest.start()
    defer { d.stop() }
    let result = try await run(["/usr/bin/python3", "-c", Self.pyxsScript], environment: d.environment)
    #expect(result.status == 0 && result.stdout == "pyxs ok\n", "\(result)")
  }

  static let cProgram = #"""
    #include <errno.h>
    #include <stdio.h>
    #include <stdlib.h>
    #include <string.h>
    #include <xenstore.h>

    int main(void) {
      struct xs_handle *xs = xs_open(0);
      if (!xs) { printf("xs_open failed: %d\n", errno); return 2; }
      if (!xs_write(xs, XBT_NULL, "/smoke/a", "hello", 5)) return 3;
      unsigned int len;
      char *v = xs_read(xs, XBT_NULL, "/smoke/a", &len);
      if (!v || len != 5 || strcmp(v, "hello")) return 4;
      printf("read /smoke/a = '%s'\n", v);
      free(v);
      for (int attempt = 1;; attempt++) {
        xs_transaction_t t = xs_transaction_start(xs);
        if (t == XBT_NULL) return 5;
        char *old = xs_read(xs, t, "/smoke/a", &len);
        free(old);
        /* A write from outside between read and commit forces one EAGAIN retry. */
        if (attempt == 1) xs_write(xs, XBT_NULL, "/smoke/a", "outside", 7);
        xs_write(xs, t, "/smoke/b", "in-tx", 5);
        if (xs_transaction_end(xs, t, false)) { printf("transaction committed after %d attempts\n", attempt); break; }
        if (errno != EAGAIN || attempt > 5) { printf("transaction failed: %d\n", errno); return 6; }
      }
      if (!xs_watch(xs, "/smoke", "tok")) return 7;
      unsigned int n;
      char **event = xs_read_watch(xs, &n);
      if (!event) return 8;
      printf("watch %s %s\n", event[XS_WATCH_PATH], event[XS_WATCH_TOKEN]);
      free(event);
      xs_write(xs, XBT_NULL, "/smoke/c", "x", 1);
      event = xs_read_watch(xs, &n);
      if (!event) return 9;
      printf("watch %s %s\n", event[XS_WATCH_PATH], event[XS_WATCH_TOKEN]);
      free(event);
      if (!xs_rm(xs, XBT_NULL, "/smoke")) return 10;
      if (xs_read(xs, XBT_NULL, "/smoke/a", &len) || errno != ENOENT) return 11;
      xs_close(xs);
      printf("done\n");
      return 0;
    }
    """#

  @Test(.enabled(if: TestEnvironment.shouldRun([.libxenstore, .gcc])))
  func cProgramLinkedWithLibxenstore() async throws {
    let d = try XenstoredUnderTest.start()
    defer { d.stop() }
    let source = d.directory.appending("xs_smoke.c"), binary = d.directory.appending("xs_smoke")
    let fd = open(source, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    var text = Self.cProgram
    text.withUTF8 { _ = write(fd, $0.baseAddress, $0.count) }
    close(fd)
    let build = try await run(["/bin/sh", "-c", "gcc -Wall -O2 -o \(binary) \(source) $(pkg-config --cflags --libs xenstore)"])
    #expect(build.status == 0, "\(build)")
    let result = try await run([binary], environment: d.environment)
    #expect(result.status == 0, "\(result)")
    #expect(result.stdout == """
      read /smoke/a = 'hello'
      transaction committed after 2 attempts
      watch /smoke tok
      watch /smoke/c tok
      done

      """, "\(result)")
  }
}
