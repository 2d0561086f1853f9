/// One-line description of a pad, as `edgectl config validate` prints it.
public enum ConfigSummary {
    public static func line(_ c: EdgeConfig) -> String {
        let tags = c.devices.reduce(0) { $0 + c.effectiveTags(of: $1).count }
        func n(_ count: Int, _ word: String, _ plural: String? = nil) -> String {
            "\(count) \(count == 1 ? word : (plural ?? word + "s"))"
        }
        return "gateway \(c.gateway.id) (tenant \(c.gateway.tenant), site \"\(c.gateway.site)\"): "
            + [
                n(c.buses.count, "bus", "buses"), n(c.devices.count, "device"), n(tags, "tag"),
                n(c.alarms.count, "alarm")
            ].joined(separator: ", ")
    }
}
