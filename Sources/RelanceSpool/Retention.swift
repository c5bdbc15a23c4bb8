import Foundation
import Logging
import RelanceConfig
import RelanceCore
import RelanceStore

/// `relance purge`, the daily job, and `relance forget --debtor`: personal data leaves the ledger,
/// the spool's `done/` and `failed/` files and the outbox; ids, statuses and timestamps stay.
public struct Retention: Sendable {
    public var configuration: RelanceConfiguration
    public var ledger: any LedgerStore
    public var logger: Logger

    public init(configuration: RelanceConfiguration, ledger: any LedgerStore, logger: Logger) {
        self.configuration = configuration
        self.ledger = ledger
        self.logger = logger
    }

    public struct Report: Sendable, CustomStringConvertible {
        public var reminders = 0
        public var outboxFiles = 0
        public var spoolFiles = 0
        public var lines = 0
        /// The receivables ledger's debtor record had its contact details erased.
        public var receivablesDebtor = false
        public var description: String {
            "\(reminders) reminders erased in the ledger, \(outboxFiles) outbox messages and \(spoolFiles) spool files deleted, \(lines) lines removed from other files"
                + (receivablesDebtor ? "; the receivables debtor's contact details erased (its invoices and payments stay)" : "")
        }
    }

    /// Erases what is past `retention.personal_data` at `now`.
    public func purge(now: Date) async throws -> Report {
        let cutoff = now.addingTimeInterval(-configuration.retention.personalData.value.seconds)
        var report = Report()
        while true {
            let batch = try await ledger.retentionCandidates(before: cutoff, limit: 500)
            if batch.isEmpty { break }
            let erasure = try await ledger.erase(reminderIDs: batch, reason: "retention", now: now)
            report.reminders += erasure.reminders.count
            if erasure.reminders.isEmpty { break }
        }
        // Files older than the cutoff, whoever they are about.
        let layout = SpoolLayout(root: configuration.spool.root)
        let maildir = configuration.email.outbox.maildir
        let smsOutbox = configuration.sms.outbox.path
        let counts: (Int, Int, Int) = try await offPool {
            var spool = 0
            for directory in [layout.done, layout.failed] { spool += Self.deleteFiles(in: directory, olderThan: cutoff) }
            var outbox = 0
            for sub in ["new", "cur"] { outbox += Self.deleteFiles(in: maildir + "/" + sub, olderThan: cutoff) }
            let lines = try FileIO.rewriteLines(smsOutbox) { line in
                guard let at = Self.field("at", in: line).flatMap(Timestamp.parse) else { return true }
                return at >= cutoff
            }
            return (spool, outbox, lines)
        }
        (report.spoolFiles, report.outboxFiles, report.lines) = counts
        logger.notice(
            "retention purge done",
            metadata: ["relance.cutoff": "\(Timestamp.format(cutoff))", "relance.report": "\(report)"])
        return report
    }

    /// Erases one debtor's personal data now (right to erasure), keeping the anonymous counts.
    public func forget(debtorID: String, now: Date) async throws -> Report {
        let ids = try await ledger.reminderIDs(debtorID: debtorID)
        let erasure = try await ledger.erase(reminderIDs: ids, reason: "forget", now: now)
        var report = Report()
        report.reminders = erasure.reminders.count
        report.receivablesDebtor = try await ledger.eraseReceivablesDebtor(debtorID, now: now)
        let layout = SpoolLayout(root: configuration.spool.root)
        let smsOutbox = configuration.sms.outbox.path
        let idSet = Set(ids)
        let counts: (Int, Int) = try await offPool {
            var files = 0
            for path in erasure.outboxFiles where unlink(path) == 0 { files += 1 }
            // Maildir readers may have moved them to cur/.
            for path in erasure.outboxFiles {
                let name = (path as NSString).lastPathComponent
                let dir = ((path as NSString).deletingLastPathComponent as NSString).deletingLastPathComponent
                if let found = try? FileManager.default.contentsOfDirectory(atPath: dir + "/cur").first(where: { $0.hasPrefix(name) }),
                    unlink(dir + "/cur/" + found) == 0
                {
                    files += 1
                }
            }
            var lines = try FileIO.rewriteLines(smsOutbox) { line in !idSet.contains(Self.field("reminder_id", in: line) ?? "") }
            // The debtor's lines in kept spool files (a batch holds other debtors too).
            for directory in [layout.done, layout.failed] {
                for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
                where name.hasSuffix(".jsonl") || name.hasSuffix(".json") {
                    lines += try FileIO.rewriteLines(directory + "/" + name) { line in
                        guard let object = try? JSONSerialization.jsonObject(with: line) as? [String: Any] else { return true }
                        // A receivables feed's debtor record holds its contact details.
                        if object["type"] as? String == "debtor" && object["id"] as? String == debtorID { return false }
                        let debtor = (object["debtor"] as? [String: Any])?["id"] as? String
                        return debtor != debtorID && !idSet.contains(object["id"] as? String ?? "")
                    }
                }
            }
            return (files, lines)
        }
        (report.outboxFiles, report.lines) = counts
        logger.notice("debtor forgotten", metadata: ["relance.debtor.id": "\(debtorID)", "relance.report": "\(report)"])
        return report
    }

    static func field(_ name: String, in line: Data) -> String? {
        (try? JSONSerialization.jsonObject(with: line) as? [String: Any])?[name] as? String
    }

    /// Deletes the regular files of `directory` last modified before `cutoff`. Returns how many.
    static func deleteFiles(in directory: String, olderThan cutoff: Date) -> Int {
        var deleted = 0
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where !name.hasPrefix(".") {
            let path = directory + "/" + name
            var st = stat()
            guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
            if Double(st.st_mtim.tv_sec) < cutoff.timeIntervalSince1970, unlink(path) == 0 { deleted += 1 }
        }
        return deleted
    }
}
