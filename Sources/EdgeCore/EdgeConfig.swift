/// The whole configuration of one well pad's gateway, as validated and with templates resolved.
public struct EdgeConfig: Sendable, Equatable, Codable {
    public var gateway: GatewayConfig
    public var uplink: UplinkConfig
    public var storage: StorageConfig
    public var buses: [BusConfig]
    /// Every template, inline or from `config/templates/`, by name.
    public var templates: [DeviceTemplate]
    public var devices: [DeviceConfig]
    public var alarms: [AlarmRule]

    public func bus(named name: String) -> BusConfig? { buses.first { $0.name == name } }
    public func template(named name: String) -> DeviceTemplate? { templates.first { $0.name == name } }
    public func device(named name: String) -> DeviceConfig? { devices.first { $0.name == name } }

    /// The tags a device reads: its template's tags with the device's overrides applied.
    public func effectiveTags(of device: DeviceConfig) -> [TagDefinition] {
        guard let template = template(named: device.template) else { return [] }
        return template.tags.map { tag in device.tagOverrides[tag.name].map { $0.applied(to: tag) } ?? tag }
    }

    /// The device limits: the template's, narrowed by the device's overrides.
    public func effectiveLimits(of device: DeviceConfig) -> DeviceLimits {
        let t = template(named: device.template)
        let base = t?.limits ?? DeviceLimits()
        var limits = device.limitOverrides?.applied(to: base) ?? base
        // One Enron 32-bit register is 4 bytes: a reply of more than 62 would not fit a Modbus PDU.
        if t?.addressing == .enron { limits.maxRegisters = min(limits.maxRegisters, 62) }
        return limits
    }
}

/// Who this gateway is: the ids the platform knows it by.
public struct GatewayConfig: Sendable, Equatable, Codable {
    public var id: String
    public var site: String
    public var tenant: String
    /// How often the gateway's own health is stored as readings of the device named `id` (GatewayHealth).
    public var healthInterval: TimeSpan = .minutes(5)
}

/// How buffered records reach the tenant's sync endpoint.
public struct UplinkConfig: Sendable, Equatable, Codable {
    /// `https://<tenant>.wellpulse.io/api/v1/edge/batches`; https only.
    public var endpoint: String
    public var tls: TLSSettings
    public var token: TokenSource
    public var batch: BatchLimits
    /// Bytes per calendar month on the wire; nil means unmetered.
    public var monthlyBudget: ByteCount?
    public var connectTimeout: TimeSpan
    public var requestTimeout: TimeSpan
    /// Proxy URL; nil uses the usual environment variables (`https_proxy`, `no_proxy`).
    public var proxy: String?
}

/// TLS for the uplink; certificate and host verification cannot be turned off.
public struct TLSSettings: Sendable, Equatable, Codable {
    /// A private CA bundle (PEM); nil means the system trust store.
    public var caFile: String?
    /// `sha256//<base64>` of the server's public key.
    public var pinnedPublicKey: String?
    public var clientCertificate: String?
    public var clientKey: String?
    public init(
        caFile: String? = nil, pinnedPublicKey: String? = nil, clientCertificate: String? = nil,
        clientKey: String? = nil
    ) {
        self.caFile = caFile; self.pinnedPublicKey = pinnedPublicKey
        self.clientCertificate = clientCertificate; self.clientKey = clientKey
    }
}

/// Where the bearer token comes from; the token itself never appears in the config.
public enum TokenSource: Sendable, Equatable, Codable {
    /// A file that must be mode 0600 (or stricter).
    case file(String)
    /// A systemd credential name, read from `$CREDENTIALS_DIRECTORY/<name>`.
    case credential(String)
}

/// Bounds on one upload batch; a batch closes at whichever is reached first.
public struct BatchLimits: Sendable, Equatable, Codable {
    public var maxRecords: Int
    public var maxBytes: ByteCount
    public var maxAge: TimeSpan
    public static let `default` = BatchLimits(
        maxRecords: 5000, maxBytes: ByteCount(bytes: 256 << 10), maxAge: .seconds(60))
}

/// The local buffer.
public struct StorageConfig: Sendable, Equatable, Codable {
    public var path: String
    /// Database + WAL + shared memory together never exceed this.
    public var maxBytes: ByteCount
    /// Readings older than this are evicted (with a gap record) even when the budget holds.
    public var retention: TimeSpan
    /// A single commit, checkpoint or vacuum that runs longer than this means the disk is hung: edged stops
    /// its watchdog pings and systemd restarts it. Applies on reload; the other storage settings at restart.
    public var stuckAfter: TimeSpan
}

/// Serial line parameters.
public struct SerialLine: Sendable, Equatable, Codable {
    public init(baud: Int, parity: Parity, dataBits: Int, stopBits: Int) {
        self.baud = baud; self.parity = parity; self.dataBits = dataBits; self.stopBits = stopBits
    }
    public enum Parity: String, Sendable, Codable, CaseIterable { case none, even, odd }
    public var baud: Int
    public var parity: Parity
    public var dataBits: Int
    public var stopBits: Int

    /// Bits on the wire per character: start + data + parity + stop.
    public var bitsPerCharacter: Int { 1 + dataBits + (parity == .none ? 0 : 1) + stopBits }
    /// Seconds to send one character at this baud rate.
    public var characterTime: Double { Double(bitsPerCharacter) / Double(baud) }

    public static let standardBauds = [1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200]
}

/// RS-485 direction control through the kernel driver (TIOCSRS485).
public struct RS485Settings: Sendable, Equatable, Codable {
    public init(rtsOnSend: Bool, rtsAfterSend: Bool, delayBeforeSend: TimeSpan, delayAfterSend: TimeSpan) {
        self.rtsOnSend = rtsOnSend; self.rtsAfterSend = rtsAfterSend; self.delayBeforeSend = delayBeforeSend;
        self.delayAfterSend = delayAfterSend
    }
    public var rtsOnSend: Bool
    public var rtsAfterSend: Bool
    public var delayBeforeSend: TimeSpan
    public var delayAfterSend: TimeSpan
}

/// A TCP endpoint, for Modbus TCP gateways and serial device servers.
public struct TCPEndpoint: Sendable, Equatable, Codable {
    public init(host: String, port: Int, connectTimeout: TimeSpan) {
        self.host = host; self.port = port; self.connectTimeout = connectTimeout
    }
    public var host: String
    public var port: Int
    public var connectTimeout: TimeSpan
}

/// One communication channel: an RS-485 line, a Modbus TCP endpoint, or a serial device server.
public struct BusConfig: Sendable, Equatable, Codable {
    public init(
        name: String, kind: Kind, device: String?, serial: SerialLine?, rs485: RS485Settings?, endpoint: TCPEndpoint?,
        interFrameDelay: TimeSpan, responseTimeout: TimeSpan, byteTimeout: TimeSpan?, retries: Int
    ) {
        self.name = name; self.kind = kind; self.device = device; self.serial = serial; self.rs485 = rs485;
        self.endpoint = endpoint; self.interFrameDelay = interFrameDelay; self.responseTimeout = responseTimeout;
        self.byteTimeout = byteTimeout; self.retries = retries
    }
    public enum Kind: String, Sendable, Codable, CaseIterable {
        case rtu
        case tcp
        case rtuOverTCP = "rtu-over-tcp"
    }
    public var name: String
    public var kind: Kind
    /// Serial device path (rtu).
    public var device: String?
    /// Line parameters (rtu; rtu-over-tcp for timing).
    public var serial: SerialLine?
    /// RS-485 mode (rtu); nil leaves the port as the driver set it.
    public var rs485: RS485Settings?
    /// Host and port (tcp, rtu-over-tcp).
    public var endpoint: TCPEndpoint?
    /// Quiet time kept between two transactions on this bus.
    public var interFrameDelay: TimeSpan
    public var responseTimeout: TimeSpan
    /// Longest silence inside one response frame (rtu, rtu-over-tcp).
    public var byteTimeout: TimeSpan?
    /// Extra attempts after a failed transaction before it counts as a failure.
    public var retries: Int
}
