import EdgeCore

extension SimControl {
    static let flowComputerUsage =
        "error: usage: efm NAME status | advance HOURS | param REGISTER VALUE | clock YYYY-MM-DDTHH:MM:SS"
        + " | skip hourly|daily N | clear hourly|daily | fault silent|truncated:N|record-size:N | acks on|off"

    /// `efm NAME …`: moves a flow computer's simulated time, changes a parameter (logging an operator event),
    /// sets its clock, jumps or clears an archive pointer, or queues a fault for its next reply.
    func handleFlowComputer(_ words: [String]) -> String {
        guard words.count >= 2, let fc = flowComputers[words[0]] else { return Self.flowComputerUsage }
        let args = Array(words.dropFirst(2))
        let kind = args.first.flatMap(ArchiveKind.init(rawValue:))
        switch (words[1], args.count) {
        case ("status", 0):
            return "ok \(fc.name) unit \(fc.unit) \(fc.profile.name) clock \(fc.clock) hourly pointer "
                + "\(fc.pointer(.hourly)) daily pointer \(fc.pointer(.daily)) events \(fc.pendingEvents)"
        case ("advance", 1):
            guard let h = Int(args[0]), h >= 0 else { return Self.flowComputerUsage }
            fc.advance(hours: h)
            return "ok \(fc.name) clock \(fc.clock)"
        case ("param", 2):
            guard let r = Int(args[0]), let v = Float(args[1]) else { return Self.flowComputerUsage }
            do { try fc.setParameter(register: r, value: v) } catch { return "error: \(error)" }
            return "ok \(fc.name) register \(r) = \(v)"
        case ("clock", 1):
            guard let t = SimProfile.FlowComputerSpec.timestamp(args[0]) else { return Self.flowComputerUsage }
            fc.setClock(t)
            return "ok \(fc.name) clock \(t)"
        case ("skip", 2):
            guard let kind, let n = Int(args[1]), n > 0 else { return Self.flowComputerUsage }
            fc.skipRecords(kind, count: n)
            return "ok \(fc.name) \(kind.rawValue) pointer \(fc.pointer(kind))"
        case ("clear", 1):
            guard let kind else { return Self.flowComputerUsage }
            fc.clearArchive(kind)
            return "ok \(fc.name) \(kind.rawValue) pointer \(fc.pointer(kind))"
        case ("acks", 1):
            guard ["on", "off"].contains(args[0]) else { return Self.flowComputerUsage }
            fc.withModel { $0.ignoreAcknowledges = args[0] == "off" }
            return "ok \(fc.name) event acknowledges \(args[0] == "off" ? "ignored" : "answered")"
        case ("fault", 1):
            guard let f = EnronReplyFault(parsing: args[0]) else { return "error: unknown fault '\(args[0])'" }
            fc.inject(f)
            return "ok \(fc.name) next reply \(f)"
        default:
            return Self.flowComputerUsage
        }
    }
}
