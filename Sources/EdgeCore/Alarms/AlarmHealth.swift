/// How the alarm system is doing (ISA-18.2 alarm health): floods and chattering alarms.
public struct AlarmHealth: Sendable, Codable, Equatable {
    /// A flood: more than this many alarms raised within `floodWindow`.
    public static let floodLimit = 10
    public static let floodWindow = TimeSpan.minutes(10)
    /// Chattering: at least this many raises and clears of one alarm within `chatterWindow`.
    public static let chatterLimit = 3
    public static let chatterWindow = TimeSpan.minutes(1)

    /// One chattering alarm and its raises and clears within the last minute.
    public struct Chatter: Sendable, Codable, Equatable {
        public var id: AlarmID
        public var transitions: Int
        public init(id: AlarmID, transitions: Int) { self.id = id; self.transitions = transitions }
    }

    /// Alarms raised within the last 10 minutes.
    public var raisedInFloodWindow: Int
    /// Whether that is a flood (more than 10).
    public var flooding: Bool
    /// Flood episodes counted so far, across restarts and reloads (one each time the 10-minute count rose above 10).
    public var floods: Int
    /// Alarms chattering now (3 or more transitions within the last minute), by id.
    public var chattering: [Chatter]
    /// Chattering episodes counted so far, across restarts and reloads (one each time an alarm reached 3
    /// transitions a minute).
    public var chatterEpisodes: Int
}

/// Raises and clears in the recent past, for `AlarmHealth`. Part of the alarm snapshot, so a restart or a
/// reload neither forgets a flood in progress nor starts the episode counts afresh.
public struct AlarmHealthLog: Sendable, Codable, Equatable {
    /// Times of raises within the flood window.
    private var raises: [Int64] = []
    /// Times of raises and clears within the chatter window, by alarm id.
    private var transitions: [AlarmID: [Int64]] = [:]
    private var floods = 0
    private var chatterEpisodes = 0

    init() {}

    /// Notes a raise or clear of `id` at `now`, counting a new flood or chatter episode when one begins.
    mutating func record(_ id: AlarmID, _ transition: AlarmTransition, now: Int64) {
        if transition == .raised {
            raises.removeAll { !Self.within(AlarmHealth.floodWindow, $0, now) }
            raises.append(now)
            if raises.count == AlarmHealth.floodLimit + 1 { floods += 1 }
        }
        var times = transitions[id, default: []].filter { Self.within(AlarmHealth.chatterWindow, $0, now) }
        times.append(now)
        if times.count == AlarmHealth.chatterLimit { chatterEpisodes += 1 }
        transitions[id] = times
        transitions = transitions.filter { $0.value.contains { Self.within(AlarmHealth.chatterWindow, $0, now) } }
    }

    /// The health as of `now`.
    func health(now: Int64) -> AlarmHealth {
        let recent = raises.filter { Self.within(AlarmHealth.floodWindow, $0, now) }.count
        let chattering = transitions.compactMap { id, times -> AlarmHealth.Chatter? in
            let n = times.filter { Self.within(AlarmHealth.chatterWindow, $0, now) }.count
            return n >= AlarmHealth.chatterLimit ? AlarmHealth.Chatter(id: id, transitions: n) : nil
        }.sorted { ($0.transitions, $1.id) > ($1.transitions, $0.id) }
        return AlarmHealth(
            raisedInFloodWindow: recent, flooding: recent > AlarmHealth.floodLimit, floods: floods,
            chattering: chattering, chatterEpisodes: chatterEpisodes)
    }

    /// Whether `t` lies within `window` ending at `now` (later than `now − window`, not after `now`).
    private static func within(_ window: TimeSpan, _ t: Int64, _ now: Int64) -> Bool {
        t > now - window.milliseconds && t <= now
    }
}
