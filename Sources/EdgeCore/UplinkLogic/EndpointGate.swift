/// When the uplink may send, decided for the endpoint as a whole — not per lane: a server that answered
/// 429/503 with `Retry-After`, or 5xx, or did not answer, is the same server for alarm events and readings.
/// When the endpoint may be tried again, alarm events go first.
///
/// A pure state machine: events (an outcome, a token looked at, a reload) change it; `next` answers what
/// the upload loop does now. Time is monotonic milliseconds passed in; randomness is injected.
///
/// - 5xx, 408, 429 without `Retry-After`, network and TLS failures: full-jitter exponential backoff,
///   `random(0, min(cap, base·2ⁿ))`, base 1 s, cap 20 s — uploads resume soon after the endpoint returns
///   (median under 15 s after a 60 s outage) — and once failures have lasted `longOutageAfter` (5 min),
///   exactly `longOutageWait` (1 min): over a long outage at most one attempt a minute (each may cost a TLS
///   handshake on a metered link), and never more than a minute after the endpoint's return.
/// - `Retry-After`: nothing goes before it expires; then a random 0–10 % more (at least 0–1 s), so a fleet
///   told the same time does not come back at the same instant (sync protocol §7).
/// - 401/403: the token is refused; retry after 30 s, doubling to 10 min — at once when the token source
///   holds another token, or on a reload. 404/405 (wrong endpoint URL) back off the same way.
/// - A reload that changes neither the endpoint nor the token keeps all of this.
public struct EndpointGate: Sendable, Equatable {
    public struct Policy: Sendable, Equatable {
        public var backoffBase: TimeSpan
        public var backoffCap: TimeSpan
        public var longOutageAfter: TimeSpan
        public var longOutageWait: TimeSpan
        public var slowRetryFirst: TimeSpan
        public var slowRetryCap: TimeSpan
        /// While a token is refused, how often the loop looks at the token source.
        public var tokenCheckEvery: TimeSpan

        public init(
            backoffBase: TimeSpan = .seconds(1), backoffCap: TimeSpan = .seconds(20),
            longOutageAfter: TimeSpan = .minutes(5),
            longOutageWait: TimeSpan = .minutes(1), slowRetryFirst: TimeSpan = .seconds(30),
            slowRetryCap: TimeSpan = .minutes(10), tokenCheckEvery: TimeSpan = .seconds(30)
        ) {
            self.backoffBase = backoffBase; self.backoffCap = backoffCap
            self.longOutageAfter = longOutageAfter; self.longOutageWait = longOutageWait
            self.slowRetryFirst = slowRetryFirst; self.slowRetryCap = slowRetryCap;
            self.tokenCheckEvery = tokenCheckEvery
        }
    }

    public enum Lane: String, Sendable, Equatable { case alarms, readings }

    /// What the upload loop does now.
    public enum Next: Sendable, Equatable {
        case send(Lane)
        /// Nothing may or need go before this moment (an event may come sooner: then ask again).
        case sleepUntil(Int64)
        /// Nothing waits to be sent.
        case idle
    }

    /// Why the endpoint is not tried now.
    public enum Hold: String, Sendable, Equatable {
        case backoff = "backing off"
        case retryAfter = "retry-after"
        case tokenRefused = "token refused"
        case wrongEndpoint = "wrong endpoint"
        case noToken = "no token"
    }

    public let policy: Policy
    /// No request before this (monotonic ms).
    public private(set) var notBeforeMillis: Int64 = .min
    public private(set) var hold: Hold?
    private var backoff: Backoff
    /// When the current run of failures began.
    private var failingSinceMillis: Int64?
    /// The token the server refused, while it is the one the source holds.
    private var refusedToken: String?
    private var slowRetries = 0

    public init(policy: Policy = Policy()) {
        self.policy = policy
        backoff = Backoff(base: policy.backoffBase, cap: policy.backoffCap)
    }

    /// Whether the server refused the token the source held (the loop then looks at the source now and then).
    public var tokenRefused: Bool { refusedToken != nil }

    /// The next thing to do: alarm events first whenever the endpoint may be tried; readings once their
    /// batch is due (`readingsDueMillis`: full, old enough, or its body nearly full — nil when none wait).
    public func next(nowMillis now: Int64, alarmsWaiting: Bool, readingsDueMillis: Int64?) -> Next {
        guard alarmsWaiting || readingsDueMillis != nil else { return .idle }
        if now < notBeforeMillis {
            // While a token is refused, wake up to look at the token source.
            let look = refusedToken != nil ? now + policy.tokenCheckEvery.milliseconds : Int64.max
            return .sleepUntil(min(notBeforeMillis, look))
        }
        if alarmsWaiting { return .send(.alarms) }
        guard let due = readingsDueMillis else { return .idle }
        return due <= now ? .send(.readings) : .sleepUntil(due)
    }

    /// A batch was sent with `token` and ended with `outcome`. Returns how long nothing may go (nil: the
    /// endpoint may be tried again at once).
    @discardableResult
    public mutating func sent(
        _ outcome: UplinkOutcome, token: String, nowMillis now: Int64,
        random: (ClosedRange<Int64>) -> Int64
    ) -> Int64? {
        switch outcome {
        case .stored:
            reset(now)
            return nil
        case .tooLarge, .rejected:
            // The batch's fault, not the endpoint's: the next batch goes at once.
            return nil
        case .unauthorized:
            if refusedToken != token { slowRetries = 0 }
            refusedToken = token
            return slowRetry(now, .tokenRefused)
        case .wrongEndpoint:
            return slowRetry(now, .wrongEndpoint)
        case .untrusted:
            return fail(now, retryAfterMillis: nil, random: random)
        case .retry(_, let retryAfter, _):
            return fail(now, retryAfterMillis: retryAfter, random: random)
        }
    }

    /// The token source could not be read: look again in `slowRetryFirst`.
    public mutating func noToken(nowMillis now: Int64) {
        hold = .noToken
        notBeforeMillis = max(notBeforeMillis, now + policy.slowRetryFirst.milliseconds)
    }

    /// The loop looked at the token source while a token is refused: when it holds another one, the endpoint
    /// is tried at once. Returns true then.
    public mutating func tokenSeen(_ token: String, nowMillis now: Int64) -> Bool {
        guard let refused = refusedToken, refused != token else { return false }
        refusedToken = nil
        slowRetries = 0
        if hold == .tokenRefused { open(now) }
        return true
    }

    /// The configuration was reloaded. A new endpoint or token starts afresh; otherwise the state stays,
    /// except that a refused token or a wrong endpoint is tried again at once (a field tech may have fixed it
    /// where the gateway cannot see: on the server).
    public mutating func reloaded(endpointOrTokenChanged: Bool, nowMillis now: Int64) {
        if endpointOrTokenChanged {
            self = EndpointGate(policy: policy)
            return
        }
        if hold == .tokenRefused || hold == .wrongEndpoint || hold == .noToken {
            slowRetries = 0
            open(now)
        }
    }

    // MARK: -

    private mutating func reset(_ now: Int64) {
        backoff.reset()
        failingSinceMillis = nil
        refusedToken = nil
        slowRetries = 0
        open(now)
    }

    private mutating func open(_ now: Int64) {
        notBeforeMillis = now
        hold = nil
    }

    private mutating func fail(_ now: Int64, retryAfterMillis: Int64?, random: (ClosedRange<Int64>) -> Int64) -> Int64 {
        let since = failingSinceMillis ?? now
        failingSinceMillis = since
        let wait: Int64
        if let ra = retryAfterMillis {
            wait = ra + random(0...max(1000, ra / 10))
            hold = .retryAfter
        } else if now - since >= policy.longOutageAfter.milliseconds {
            wait = policy.longOutageWait.milliseconds
            hold = .backoff
        } else {
            wait = backoff.next(random: random)
            hold = .backoff
        }
        notBeforeMillis = now + wait
        return wait
    }

    private mutating func slowRetry(_ now: Int64, _ why: Hold) -> Int64 {
        let first = policy.slowRetryFirst.milliseconds, cap = policy.slowRetryCap.milliseconds
        let wait = min(cap, first << Int64(min(slowRetries, 20)))
        slowRetries += 1
        hold = why
        notBeforeMillis = now + wait
        return wait
    }
}
