import Spawn

/// `xl vcpu-list` and `xl vcpu-pin`: a guest's vCPUs are its device model's vCPU threads.
extension DomainControl {
  /// The device model's process, if it is still the one recorded.
  func deviceModelProcess(_ target: Target) async throws(XenLightError) -> ProcessIdentity {
    let recorded: String?
    do { recorded = try await DomainStore.readOptional(store.xenstore, target.layout.deviceModelIdentityPath) } catch {
      throw XenStoreConnector.failure("cannot read domain \(target.domid)'s records", error)
    }
    guard let recorded, let identity = ProcessIdentity(recorded), DomainDestroyer.liveness(of: identity) == .running else {
      throw XenLightError(.invalidState, "domain \(target.domid) (\(target.name)) has no running device model")
    }
    return identity
  }

  /// The domain's vCPUs, by index.
  public func vcpus(_ target: Target) async throws(XenLightError) -> [VCPUThread] {
    let identity = try await deviceModelProcess(target)
    return VCPUThread.of(pid: identity.pid, threads: VCPUThread.threads(try await qmp(target, "query-cpus-fast")))
  }

  /// Pins vCPU `index` (nil: every one) to `cpus`.
  public func pin(_ target: Target, vcpu index: Int?, to cpus: [Int]) async throws(XenLightError) {
    let threads = try await vcpus(target)
    let chosen = index.map { i in threads.filter { $0.index == i } } ?? threads
    guard !chosen.isEmpty else {
      throw XenLightError(.invalidConfig, "domain \(target.domid) (\(target.name)) has no vCPU \(index ?? 0) (it has \(threads.count))")
    }
    for thread in chosen { try VCPUThread.pin(tid: thread.tid, to: cpus) }
  }
}

/// `xl vcpu-list`'s table.
public enum VCPUListFormat {
  public static let header = pad("Name", 32) + " " + lpad("ID", 5) + " " + lpad("VCPU", 5) + " " + lpad("CPU", 5) + " " + lpad("State", 5)
    + " " + lpad("Time(s)", 9) + " Affinity (Hard / Soft)\n"

  public static func row(name: String, domid: UInt32, _ vcpu: VCPUThread, paused: Bool, hostCPUs: Int = CPUList.hostCPUs) -> String {
    let state = "\(vcpu.running && !paused ? "r" : "-")\(vcpu.running && !paused ? "-" : "b")-"
    return pad(name, 32) + " " + lpad("\(domid)", 5) + " " + lpad("\(vcpu.index)", 5) + lpad("\(vcpu.cpu)", 5) + "   " + state + " "
      + lpad(DomainListFormat.formatTenths(vcpu.seconds), 9) + "  " + CPUList.text(vcpu.affinity, hostCPUs: hostCPUs) + " / all\n"
  }

  private static func pad(_ s: String, _ width: Int) -> String { DomainListFormat.pad(s, width) }
  private static func lpad(_ s: String, _ width: Int) -> String { DomainListFormat.lpad(s, width) }
}
