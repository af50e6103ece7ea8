import Reactor

/// A task executor that runs jobs on a client's event-loop thread, where its replies are read.
///
/// Code that runs with this executor as its preference (`withTaskExecutorPreference`, or
/// `XenStoreClient.withLoopExecutor`) sends each request on the loop thread directly and is
/// resumed there when the reply has been read: no thread hop per request, neither to the loop
/// nor back to Swift's cooperative pool. Keep such code short and non-blocking; it shares the
/// thread with every socket, timer and watch of the loop.
public final class XenStoreLoopExecutor: TaskExecutor, @unchecked Sendable {
  /// The loop the jobs run on.
  public let loop: EventLoop

  public init(loop: EventLoop) { self.loop = loop }

  public func enqueue(_ job: consuming ExecutorJob) {
    let job = UnownedJob(job)
    let executor = asUnownedTaskExecutor()
    loop.execute { job.runSynchronously(on: executor) }
  }
}
