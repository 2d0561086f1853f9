import EdgeCore
import ModbusPoller
import ServiceLifecycle

/// Feeds poll reports into the gateway, and ticks the alarm timers every second. Shut down after polling
/// (the ServiceGroup goes in reverse order), it then ingests every report still queued — the bus threads
/// have stopped, so the queue is finite — and ends; the buffer service, next, commits what that queued.
struct IngestService: Service {
    let gateway: Gateway
    let reports: PollReportQueue

    func run() async throws {
        let gateway = self.gateway, reports = self.reports
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withGracefulShutdownHandler {
                    while let report = await reports.next() { await gateway.ingest(report) }
                } onGracefulShutdown: {
                    reports.stopWaiting()
                }
            }
            group.addTask {
                while !Task.isCancelled && !Task.isShuttingDownGracefully {
                    try? await Task.sleep(for: .seconds(1))
                    await gateway.tickAlarms()
                }
            }
            await group.next()
            group.cancelAll()
        }
        for report in reports.finish() { await gateway.ingest(report) }
    }
}
