import Spawn

/// What `xl list` knows of a domain: its xenstore records and whether its device model lives.
public struct DomainInfo: Hashable, Sendable {
  /// Whether the device model recorded for the domain is still that process.
  public enum DeviceModelState: String, Hashable, Sendable {
    /// The recorded process is alive (same pid, start time and boot).
    case running
    /// No process has that pid any more.
    case exited
    /// The pid now belongs to another process (or another boot).
    case replaced
    /// No device model was recorded (creation in progress, or a failed creation's leftovers).
    case none
  }

  public var domid: UInt32
  public var name: String
  public var uuid: String?
  /// hvm, pv or pvh (`/libxl/<domid>/type`).
  public var type: String?
  /// `memory/target`, in KiB.
  public var memoryKiB: Int
  /// `memory/static-max`, in KiB.
  public var maxMemoryKiB: Int
  /// CPUs whose `cpu/<n>/availability` is online, and all of them.
  public var onlineVcpus: Int
  public var maxVcpus: Int
  /// `/local/domain/0/device-model/<domid>/state`.
  public var deviceModelStateNode: String?
  /// `/libxl/<domid>/device-model-identity`, as recorded.
  public var deviceModelIdentity: String?
  public var deviceModel: DeviceModelState
  /// CPU time the device model (and so the guest) has used, in seconds.
  public var cpuSeconds: Double
  public var target: String?
  public var qmpSocketPath: String?
  public var logPath: String?
  public var startTime: String?
  /// `/libxl/<domid>/run-state`.
  public var runState: RunState?
  /// Every virtual CPU of the running guest is idle (its QEMU vCPU threads sleep): xl's `b`.
  public var blocked = false
  /// Whether the recorded domain monitor is alive (nil: none was recorded, as with `xl create -e`).
  public var monitored: Bool?

  public init(
    domid: UInt32, name: String, uuid: String? = nil, type: String? = nil, memoryKiB: Int = 0, maxMemoryKiB: Int = 0,
    onlineVcpus: Int = 0, maxVcpus: Int = 0, deviceModelStateNode: String? = nil, deviceModelIdentity: String? = nil,
    deviceModel: DeviceModelState = .none, cpuSeconds: Double = 0, target: String? = nil, qmpSocketPath: String? = nil,
    logPath: String? = nil, startTime: String? = nil
  ) {
    self.domid = domid
    self.name = name
    self.uuid = uuid
    self.type = type
    self.memoryKiB = memoryKiB
    self.maxMemoryKiB = maxMemoryKiB
    self.onlineVcpus = onlineVcpus
    self.maxVcpus = maxVcpus
    self.deviceModelStateNode = deviceModelStateNode
    self.deviceModelIdentity = deviceModelIdentity
    self.deviceModel = deviceModel
    self.cpuSeconds = cpuSeconds
    self.target = target
    self.qmpSocketPath = qmpSocketPath
    self.logPath = logPath
    self.startTime = startTime
  }

  /// xl's six state letters, `rbpscd`: running, blocked, paused, shutdown, crashed, dying.
  /// Without a hypervisor the device model is the guest: alive is running; gone is
  /// "shut down, crashed" (`---sc-`), as libxl shows a domain that died under it.
  /// With a run state, its letter: `--p---` paused, `---s--` shut down, `----c-` crashed,
  /// `-----d` dying; a running guest is `r-----`, or `-b----` when every vCPU is idle.
  public var stateLetters: String {
    switch (runState, deviceModel) {
    case (.dying?, _): "-----d"
    case (.shutdown?, _), (.restarting?, _): "---s--"
    case (.crashed?, _): "----c-"
    case (_, .exited), (_, .replaced): "---sc-"
    case (.paused?, .running): "--p---"
    case (_, .running): blocked ? "-b----" : "r-----"
    default: "------"
    }
  }
}

/// `xl list` output: Xen's table, and the JSON of `xl list -l`.
public enum DomainListFormat {
  /// The header and one row per domain, in xl's column widths; `verbose` (`-v`) adds the
  /// UUID, the shutdown reason code and the security label, `numa` (`-n`) the node affinity.
  public static func table(_ domains: [DomainInfo], verbose: Bool = false, numa: Bool = false) -> String {
    var header = pad("Name", 40) + " " + lpad("ID", 5) + " " + lpad("Mem", 5) + " " + lpad("VCPUs", 5) + " "
      + lpad("State", 10) + " " + lpad("Time(s)", 9)
    if verbose { header += "   " + pad("UUID", 36) + " Reason-Code  Security Label" }
    if numa { header += " NODE Affinity" }
    var lines = [header]
    for d in domains {
      let time = formatTenths(d.cpuSeconds)
      var line = pad(d.name, 40) + " " + lpad("\(d.domid)", 5) + " " + lpad("\(d.memoryKiB / 1024)", 5) + " "
        + lpad("\(d.onlineVcpus)", 5) + "     " + d.stateLetters + "  " + lpad(time, 8)
      if verbose { line += " " + pad(d.uuid ?? "-", 36) + " " + lpad("-", 8) + " " + lpad("-", 16) }
      if numa { line += " all" }
      lines.append(line + (d.monitored == false ? "  (not monitored: its monitor is gone)" : ""))
    }
    return lines.joined(separator: "\n") + "\n"
  }

  /// `xl list -l`: an array of `{ "domid", "config": { "c_info", "b_info" }, "device_model" }`,
  /// with libxl's field names where libxl has them.
  public static func json(_ domains: [DomainInfo]) -> String {
    JSON.array(domains.map(json)).rendered() + "\n"
  }

  static func json(_ d: DomainInfo) -> JSON {
    var cInfo: [(String, JSON)] = [("name", .string(d.name))]
    if let type = d.type { cInfo.insert(("type", .string(type)), at: 0) }
    if let uuid = d.uuid { cInfo.append(("uuid", .string(uuid))) }
    let bInfo: [(String, JSON)] = [
      ("max_vcpus", .number(Int64(d.maxVcpus))),
      ("avail_vcpus", .number(Int64(d.onlineVcpus))),
      ("max_memkb", .number(Int64(d.maxMemoryKiB))),
      ("target_memkb", .number(Int64(d.memoryKiB))),
      ("device_model_version", .string("qemu_xen")),
    ]
    var dm: [(String, JSON)] = [("status", .string(d.deviceModel.rawValue))]
    dm.append(("state", d.deviceModelStateNode.map(JSON.string) ?? .null))
    if let identity = d.deviceModelIdentity, let pid = identity.split(separator: ":").first.flatMap({ Int64($0) }) {
      dm.append(("pid", .number(pid)))
      dm.append(("identity", .string(identity)))
    }
    if let target = d.target { dm.append(("target", .string(target))) }
    if let qmp = d.qmpSocketPath { dm.append(("qmp", .string(qmp))) }
    if let log = d.logPath { dm.append(("log", .string(log))) }
    if let state = d.runState { dm.append(("run_state", .string(state.rawValue))) }
    if let monitored = d.monitored { dm.append(("monitored", .bool(monitored))) }
    var object: [(String, JSON)] = [
      ("domid", .number(Int64(d.domid))),
      ("config", .object([("c_info", .object(cInfo)), ("b_info", .object(bInfo))])),
      ("device_model", .object(dm)),
    ]
    if let start = d.startTime { object.append(("start_time", .string(start))) }
    return .object(object)
  }

  static func pad(_ s: String, _ width: Int) -> String {
    s.count >= width ? s : s + String(repeating: " ", count: width - s.count)
  }

  static func lpad(_ s: String, _ width: Int) -> String {
    s.count >= width ? s : String(repeating: " ", count: width - s.count) + s
  }

  /// `%.1f` without Foundation.
  static func formatTenths(_ value: Double) -> String {
    let tenths = Int64((max(value, 0) * 10).rounded())
    return "\(tenths / 10).\(tenths % 10)"
  }
}
