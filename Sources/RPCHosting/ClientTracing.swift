import Logging
import RPCCore
import ServiceLifecycle
import Synchronization
import TraceExport

/// Traces of a client tool's calls (the cqrs CLI's `--otlp-endpoint`): each call made outside a
/// trace starts one with a CLIENT span, whose context the server continues, and the spans are
/// sent before the tool exits (`finish`).
///
/// A tool's process is short: the exporter runs in a service group of its own for the tool's
/// life, and `finish` shuts that group down gracefully, which sends what the batch processor
/// still holds.
public enum ClientTracing {
    private static let running = Mutex<(group: ServiceGroup, task: Task<Void, Never>)?>(nil)

    /// Whether `start` installed tracing in this process.
    public static var isOn: Bool { running.withLock { $0 != nil } }

    /// Installs the exporting tracer (once: later calls change nothing) and starts sending.
    public static func start(endpoint: String, serviceName: String) throws {
        guard !isOn else { return }
        let logger = Logger(label: "otel")
        let exporter = try OTLPTraceExport.bootstrap(
            OTLPTraceExport.Settings(endpoint: endpoint, serviceName: serviceName, exportDelay: .milliseconds(200)), logger: logger)
        let group = ServiceGroup(configuration: .init(services: [.init(service: exporter)], logger: logger))
        let task = Task<Void, Never> { try? await group.run() }
        running.withLock { $0 = (group, task) }
    }

    /// Sends the spans still held and stops the exporter, waiting at most `limit` (a collector
    /// that is down must not hold the tool's exit: the exporter would retry for 10 s); returns at
    /// once when tracing is off.
    public static func finish(within limit: Duration = .seconds(2)) async {
        guard
            let (group, task) = running.withLock({ running in
                defer { running = nil }
                return running
            })
        else { return }
        await group.triggerGracefulShutdown()
        await withTaskGroup(of: Void.self) { waiting in
            waiting.addTask { await task.value }
            waiting.addTask { try? await Task.sleep(for: limit) }
            await waiting.next()
            task.cancel()
            waiting.cancelAll()
        }
    }
}
