/// The head of an xl save file and of xl's migration stream (tools/xl/xl.h `struct
/// save_file_header`): 32 bytes of magic, four 32-bit words in the writer's byte order —
/// byte-order marker, mandatory flags, optional flags, length of the optional data — then the
/// optional data: a 32-bit length and the domain's config. The device model's state follows.
///
/// xl's own files carry libxc's stream (`streamV2`) and the config as libxl JSON (`json`).
/// Here the state is QEMU's migration stream, marked by a mandatory flag of its own
/// (`qemuStream`), and the config is xl.cfg text (no `json` flag, as xl's first format): so
/// Xen's xl refuses our files ("mandatory flags … not supported") and we refuse Xen's, each
/// saying so, instead of feeding one's stream to the other.
public struct SaveFileHeader: Equatable, Sendable {
  public static let magic: [UInt8] = Array("Xen saved domain, xl format\n \0 \r".utf8)
  /// 0x01020304 in the writer's byte order: read back as 0x04030201, the file comes from a
  /// host of the other byte order.
  public static let byteOrderMarker: UInt32 = 0x0102_0304
  /// The fixed part: magic and four words.
  public static let fixedSize = 48

  public struct Flags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// xl: the config is libxl's JSON.
    public static let json = Flags(rawValue: 1 << 0)
    /// xl: the state is libxc's migration stream v2.
    public static let streamV2 = Flags(rawValue: 1 << 1)
    /// Here: the state is QEMU's migration stream (the local target).
    public static let qemuStream = Flags(rawValue: 1 << 31)
  }

  public var mandatoryFlags: Flags
  public var optionalFlags: UInt32
  /// The domain's config (xl.cfg text), nil when the file carries none.
  public var config: String?
  /// The device model's PCI layout, a record of our own after the config (xl skips optional
  /// data it does not understand).
  public var pciSlots: PCISlots?

  public init(config: String?, pciSlots: PCISlots? = nil) {
    self.mandatoryFlags = .qemuStream
    self.optionalFlags = 0
    self.config = config
    self.pciSlots = pciSlots
  }

  /// The header as written: fixed part, then the optional data.
  public var encoded: [UInt8] {
    let configBytes = Array((config ?? "").utf8)
    var optional: [UInt8] = []
    if config != nil || pciSlots != nil {
      optional += Self.word(UInt32(configBytes.count))
      optional += configBytes
    }
    if let pciSlots {
      let slotBytes = Array(pciSlots.text.utf8)
      optional += Self.word(UInt32(slotBytes.count)) + slotBytes
    }
    var bytes = Self.magic
    bytes += Self.word(Self.byteOrderMarker)
    bytes += Self.word(mandatoryFlags.rawValue)
    bytes += Self.word(optionalFlags)
    bytes += Self.word(UInt32(optional.count))
    return bytes + optional
  }

  /// The fixed part's reading: the length of the optional data that follows it.
  /// `source` names the file (or stream) in messages.
  public static func optionalDataLength(fixed bytes: [UInt8], source: String) throws(XenLightError) -> (Flags, UInt32, Int) {
    guard bytes.count == fixedSize else {
      if Array(bytes.prefix(magic.count)) != Array(magic.prefix(bytes.count)) { throw notASaveFile(source) }
      throw XenLightError(.io, "\(source): truncated: the save file's header ends after \(bytes.count) of \(fixedSize) bytes")
    }
    guard Array(bytes[0..<magic.count]) == magic else { throw notASaveFile(source) }
    let order = word(bytes, at: 32)
    guard order == byteOrderMarker else {
      if order == byteOrderMarker.byteSwapped {
        throw XenLightError(.invalidConfig, "\(source): File has wrong byte order: it was written on a host of the other byte order")
      }
      throw XenLightError(.invalidConfig, "\(source): File has wrong byte order (marker 0x\(String(order, radix: 16))): corrupt?")
    }
    let mandatory = Flags(rawValue: word(bytes, at: 36))
    if mandatory.contains(.streamV2) {
      throw XenLightError(
        .invalidConfig,
        "\(source): a save file of Xen's xl (its state is libxc's stream, flags 0x\(String(mandatory.rawValue, radix: 16))): only a Xen host restores it; this toolstack restores QEMU's stream (the local target)")
    }
    let unknown = mandatory.subtracting([.qemuStream])
    guard unknown.isEmpty else {
      throw XenLightError(
        .invalidConfig,
        "\(source): Savefile has mandatory flag(s) 0x\(String(unknown.rawValue, radix: 16)) which are not supported; need newer xl")
    }
    guard mandatory.contains(.qemuStream) else {
      throw XenLightError(.invalidConfig, "\(source): the save file does not say what its state is (mandatory flags 0x\(String(mandatory.rawValue, radix: 16)))")
    }
    return (mandatory, word(bytes, at: 40), Int(word(bytes, at: 44)))
  }

  /// The header from its fixed part and the optional data.
  public static func decode(fixed: [UInt8], optional: [UInt8], source: String) throws(XenLightError) -> SaveFileHeader {
    let (flags, optionalFlags, length) = try optionalDataLength(fixed: fixed, source: source)
    guard optional.count == length else {
      throw XenLightError(.io, "\(source): truncated: the save file's config ends after \(optional.count) of \(length) bytes")
    }
    var header = SaveFileHeader(config: nil)
    header.mandatoryFlags = flags
    header.optionalFlags = optionalFlags
    if length >= 4 {
      let size = Int(word(optional, at: 0))
      guard size <= length - 4 else {
        throw XenLightError(.io, "\(source): corrupt: the config's length (\(size) bytes) exceeds the header's optional data (\(length - 4))")
      }
      var text = optional[4..<(4 + size)]
      if text.last == 0 { text = text.dropLast() }
      header.config = size == 0 ? nil : String(decoding: text, as: UTF8.self)
      let rest = Array(optional[(4 + size)...])
      if rest.count >= 4, Int(word(rest, at: 0)) <= rest.count - 4 {
        header.pciSlots = PCISlots(text: String(decoding: rest[4..<(4 + Int(word(rest, at: 0)))], as: UTF8.self))
      }
    }
    return header
  }

  static func notASaveFile(_ source: String) -> XenLightError {
    XenLightError(.invalidConfig, "\(source): File has wrong magic number - corrupt or for a different tool? (not an xl save file)")
  }

  /// Little-endian, the byte order of every host this runs on (x86-64, arm64).
  static func word(_ value: UInt32) -> [UInt8] {
    [UInt8(value & 0xff), UInt8(value >> 8 & 0xff), UInt8(value >> 16 & 0xff), UInt8(value >> 24)]
  }

  static func word(_ bytes: [UInt8], at offset: Int) -> UInt32 {
    UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16 | UInt32(bytes[offset + 3]) << 24
  }
}
