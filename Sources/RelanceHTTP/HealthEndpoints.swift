import Foundation
import HTTPTypes
import Hummingbird
import Metrics
import NIOCore
import RelanceCore
import RelanceSpool
import RelanceStore

extension WebhookRoutes {
    /// `GET /healthz`: 200 while the ledger takes writes and every service runs, else 503 and why.
    func healthz() async -> Response {
        var problems: [String] = []
        if let problem = await ledger.writeProblem(now: clock()) { problems.append(problem) }
        let stopped = health.stopped
        if !stopped.isEmpty { problems.append("not running: \(stopped.joined(separator: ", "))") }
        return problems.isEmpty ? Self.text(.ok, "ok") : Self.text(.serviceUnavailable, problems.joined(separator: "; "))
    }

    /// `GET /metrics`: Prometheus text. Queue depths are read at scrape time, every (channel,
    /// status) pair included, so a status that dropped to zero reads 0 instead of its last value.
    /// With several nodes the depths are the cluster's (one shared ledger), and each node's
    /// claims and last heartbeat are listed; counters and timings are this node's.
    func metrics() async -> Response {
        if let nodes = try? await ledger.clusterNodes() {
            for node in nodes {
                Gauge(label: "relance_node_claims", dimensions: [("node", node.id)]).record(node.claims)
                Gauge(label: "relance_node_seen_timestamp_seconds", dimensions: [("node", node.id)]).record(node.seenAt.timeIntervalSince1970)
            }
        }
        if let counts = try? await ledger.statusCounts() {
            var depth: [String: [String: Int]] = [:]
            for row in counts { depth[row.channel, default: [:]][row.status, default: 0] += row.count }
            for channel in Channel.allCases {
                for status in DeliveryStatus.allCases {
                    Gauge(label: "relance_deliveries", dimensions: [("channel", channel.rawValue), ("status", status.rawValue)])
                        .record(depth[channel.rawValue]?[status.rawValue] ?? 0)
                }
            }
        }
        let spool = self.spool
        let waiting = await offPool { spool.waitingFiles().count }
        Gauge(label: "relance_spool_waiting_files").record(waiting)
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(bytes: buffer)))
    }
}
