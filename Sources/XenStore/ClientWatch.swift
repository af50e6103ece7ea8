/// The events of one or more xenstore watches, in the order the daemon sent them.
///
/// The first event of each watched path arrives right after the watch is set (Xen's daemons
/// send it unasked), so a reader sees the current state before any change. Events for a path
/// cover the path and everything below it, and removal of an ancestor; spurious events are
/// allowed by the protocol.
///
/// The watches end (UNWATCH is sent) when `unwatch()` is called, when the iterating task is
/// cancelled, or when the sequence and its iterators are dropped. If the connection is lost
/// the sequence throws `.connectionLost`; if the client is closed it simply ends.
public struct XenStoreWatch: AsyncSequence, Sendable {
  /// One WATCH_EVENT.
  public struct Event: Hashable, Sendable {
    /// The node that changed (relative if the watch was set with a relative path).
    public let path: String
    /// The watched path this event belongs to.
    public let watchedPath: String
  }

  public typealias Element = Event
  public typealias AsyncIterator = AsyncThrowingStream<Event, Error>.Iterator

  /// The watched paths, in the order they were set.
  public var paths: [String] { watches.map(\.path) }
  let watches: [(path: String, token: String)]
  let client: XenStoreClient
  let stream: AsyncThrowingStream<Event, Error>
  let events: AsyncThrowingStream<Event, Error>.Continuation

  public func makeAsyncIterator() -> AsyncIterator { stream.makeAsyncIterator() }

  /// Removes the watches (`xs_unwatch`, UNWATCH) and ends the sequence. Events already
  /// received stay readable; later ones are dropped.
  public func unwatch() async throws(XenStoreError) {
    let connection = client.connection
    let watches = watches
    let owned: [[String]]
    do {
      owned = try await client.loop.submit {
        watches.filter { connection.removeWatch(token: $0.token) }.map { [$0.path, $0.token] }
      }
    } catch {
      throw XenStoreError.from(error, "unwatch")
    }
    defer { events.finish() }
    for strings in owned {
      _ = try await client.request(.unwatch, strings: strings, operation: "unwatch \(strings[0])")
    }
  }
}

extension XenStoreClient {
  /// Watches `path` (`xs_watch`, WATCH): returns once the daemon has set the watch.
  public func watch(_ path: String) async throws(XenStoreError) -> XenStoreWatch {
    try await watch([path])
  }

  /// Watches every path in `paths` (set one after another), delivering all their events in
  /// one sequence in the order the daemon sent them, as `xenstore-watch` with several keys
  /// does. If one cannot be set, those already set are removed and the error thrown.
  public func watch(_ paths: [String]) async throws(XenStoreError) -> XenStoreWatch {
    let (stream, events) = AsyncThrowingStream<XenStoreWatch.Event, Error>.makeStream()
    let watches = paths.map { (path: $0, token: makeToken()) }
    let connection = connection
    events.onTermination = { [loop] _ in
      loop.execute {
        for (path, token) in watches where connection.removeWatch(token: token) {
          connection.sendDetached(Message(type: .unwatch, strings: [path, token]))
        }
      }
    }
    // Routes first, so an event racing ahead of the WATCH reply still finds its sequence.
    loop.execute {
      for (path, token) in watches {
        connection.addWatch(token: token, route: .init(watchedPath: path, events: events))
      }
    }
    for (path, token) in watches {
      do {
        _ = try await request(.watch, strings: [path, token], operation: "watch \(path)")
      } catch {
        // The daemon refused this one: only the others need an UNWATCH. (Cancelled: the
        // WATCH may still take effect; the UNWATCH queued behind it undoes it.)
        if error.code != .cancelled { loop.execute { connection.removeWatch(token: token) } }
        events.finish()
        throw error
      }
    }
    return XenStoreWatch(watches: watches, client: self, stream: stream, events: events)
  }
}
