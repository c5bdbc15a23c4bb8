import Foundation
import RelanceCore

/// The embedded default transport for SMS: one JSON object per line, appended and fsynced.
public final class SMSOutbox: Sendable {
    public let path: String
    private let queue = DispatchQueue(label: "relance.outbox.sms")

    public init(path: String) throws {
        self.path = path
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
    }

    public struct Line: Codable, Sendable {
        public var id: String
        public var to: String
        public var from: String
        public var text: String
        public var reminderID: String
        public var at: String

        enum CodingKeys: String, CodingKey {
            case id, to, from, text
            case reminderID = "reminder_id"
            case at
        }
    }

    public func send(to: String, from: String, text: String, reminderID: String) async -> SendOutcome {
        let id = "sms-" + UUID().uuidString.lowercased()
        let line = Line(id: id, to: to, from: from, text: text, reminderID: reminderID, at: Timestamp.format(Date()))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard var encoded = try? encoder.encode(line) else { return .permanent(code: nil, detail: "cannot encode SMS") }
        encoded.append(UInt8(ascii: "\n"))
        let data = encoded
        let path = self.path
        return await withCheckedContinuation { continuation in
            queue.async {
                do {
                    try FileIO.appendDurably(data, to: path)
                    continuation.resume(returning: .sent(providerID: id, code: nil, detail: "appended to \(path)"))
                } catch {
                    continuation.resume(returning: .transient(code: nil, detail: "outbox write failed: \(error)", retryAfter: nil))
                }
            }
        }
    }
}
