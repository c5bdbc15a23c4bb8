import Foundation
import GRDB
import RelanceCore

/// A ledger row that does not hold what the schema promises: a channel or status this version
/// does not know (a newer version wrote it, or the file was edited). Never read as a default.
public struct LedgerCorruption: Error, CustomStringConvertible {
    public var description: String
    public init(description: String) { self.description = description }
}

extension Row {
    /// The delivery key of a row with `reminder_id` and `channel` columns.
    func deliveryKey(reminder: String = "reminder_id", channel: String = "channel") throws -> DeliveryKey {
        DeliveryKey(reminderID: self[reminder], channel: try self.channel(channel))
    }

    func channel(_ column: String = "channel") throws -> Channel {
        let raw: String? = self[column]
        guard let raw, let channel = Channel(rawValue: raw) else {
            throw LedgerCorruption(description: "unknown channel '\(raw ?? "NULL")' in the ledger (column \(column))")
        }
        return channel
    }

    func deliveryStatus(_ column: String = "status") throws -> DeliveryStatus {
        let raw: String? = self[column]
        guard let raw, let status = DeliveryStatus(rawValue: raw) else {
            throw LedgerCorruption(description: "unknown delivery status '\(raw ?? "NULL")' in the ledger (column \(column))")
        }
        return status
    }
}

extension Reminder {
    /// A reminder record stored in the ledger; a record that does not decode is corruption.
    public static func stored(_ text: String, id: String) throws -> Reminder {
        do { return try fromCanonicalJSON(text) } catch {
            throw LedgerCorruption(description: "the stored record of reminder \(id) does not decode: \(error)")
        }
    }
}
