import Foundation
import Logging
import RelanceTransport

/// The bounces an IMAP mailbox receives (`email.bounce.imap`), read through libcurl: each message
/// of the folder is fetched and applied through the intake; what it recognised as a bounce of ours
/// is moved to the processed folder, and everything else is left as it was (its `\Seen` flag
/// restored), never deleted. Unlike a POP3 reader that empties the mailbox, a stranger's mail or a
/// debtor's reply stays for a human.
public final class IMAPBounces: @unchecked Sendable {
    // @unchecked: `passed` is only touched by `pass`, which its one caller (the daemon's service) never runs concurrently.
    public let mailbox: IMAPMailbox
    public let folder: String
    public let processedFolder: String
    public let intake: BounceIntake
    /// UIDs read and left alone (not ours): not fetched again for an hour.
    private var passed: [Int: Date] = [:]
    private var created = false

    public init(mailbox: IMAPMailbox, folder: String, processedFolder: String, intake: BounceIntake) {
        self.mailbox = mailbox
        self.folder = folder
        self.processedFolder = processedFolder
        self.intake = intake
    }

    public struct Pass: Sendable, Hashable {
        /// Messages fetched this pass.
        public var read = 0
        /// Recognised and moved to the processed folder.
        public var moved = 0
        /// Of those, bounces that changed a delivery.
        public var applied = 0
    }

    /// One pass over the folder. Throws when the server or the ledger fails (the next pass retries).
    public func pass(now: @Sendable () -> Date = Date.init) async throws -> Pass {
        if !created {
            try await mailbox.create(processedFolder)
            created = true
        }
        let clock = now()
        passed = passed.filter { clock.timeIntervalSince($0.value) < 3600 }
        let unseen = Set(try await mailbox.uids(in: folder, unseenOnly: true))
        var result = Pass()
        for uid in try await mailbox.uids(in: folder) where passed[uid] == nil {
            let data = try await mailbox.fetch(uid: uid, in: folder)
            result.read += 1
            let outcome = try await intake.process(data, source: "imap", now: now())
            if outcome.recognised {
                try await mailbox.move(uid: uid, from: folder, to: processedFolder)
                result.moved += 1
                if case .applied(_, let r) = outcome, r != .duplicate { result.applied += 1 }
                continue
            }
            if unseen.contains(uid) { try await mailbox.restoreUnseen(uid: uid, in: folder) }
            if !outcome.retryLater { passed[uid] = clock }
        }
        return result
    }
}
